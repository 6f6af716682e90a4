"""What the benchmarks share: the tutorial's click data and median timing."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import tempfile
import time

import numpy as np
import pyarrow as pa

from apiary import Apiary

COUNTRIES = np.array(["us", "uk", "de", "fr", "jp", "br", "au", "ca"])
PAGES = np.array(["/home", "/products", "/about", "/pricing", "/docs", "/blog"])


def clicks(rng: np.random.Generator, first: int, n: int) -> pa.Table:
    """`n` tutorial-shaped click rows with event ids from `first`."""
    return pa.table(
        {
            "event_id": np.arange(first, first + n, dtype=np.int64),
            "user_id": pa.array(np.char.add("user_", rng.integers(1, 501, n).astype(str))),
            "page": pa.array(PAGES[rng.integers(0, len(PAGES), n)]),
            "duration_ms": rng.integers(100, 30001, n, dtype=np.int64),
            "country": pa.array(COUNTRIES[rng.integers(0, len(COUNTRIES), n)]),
        }
    )


def median_seconds(fn, repeat: int) -> float:
    """The median wall time of `repeat` calls of `fn`, after one warm-up."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def clicks_frame(ap, rows: int) -> None:
    """Creates `analytics.events.clicks` (partitioned by country) in `ap`
    and writes `rows` click rows to it, a million per commit."""
    ap.create_hive("analytics")
    ap.create_box("analytics", "events")
    ap.create_frame("analytics", "events", "clicks", {
        "event_id": "int64", "user_id": "utf8", "page": "utf8", "duration_ms": "int64", "country": "utf8",
    }, partition_by=["country"])
    rng = np.random.default_rng(7)
    step = 1_000_000
    for first in range(0, rows, step):
        ap.write_to_frame("analytics", "events", "clicks", clicks(rng, first, min(step, rows - first)))


def clicks_root(rows: int):
    """A temporary local root holding `rows` click rows in
    `analytics.events.clicks`: returns the directory (removed when it is
    collected), the root's path and the started SDK node that wrote it.
    Distribution is off, so a gateway over it answers alone."""
    os.environ["APIARY_DISTRIBUTE_MIN_CELLS"] = "1000000000"
    tmp = tempfile.TemporaryDirectory()
    root = os.path.join(tmp.name, "root")
    ap = Apiary("bench", storage=root).start()
    clicks_frame(ap, rows)
    return tmp, root, ap


def serve(root: str) -> tuple[subprocess.Popen, str]:
    """`apiary serve` ($APIARY_BIN) on `root`, once it listens; returns the
    process and a psycopg connection string."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, APIARY_STORAGE=root, APIARY_LISTEN=f"127.0.0.1:{port}")
    server = subprocess.Popen([os.environ["APIARY_BIN"], "serve"], env=env, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, f"host=127.0.0.1 port={port} user=bench dbname=analytics"
        except OSError:
            if time.time() > deadline:
                server.kill()
                raise
            time.sleep(0.05)
