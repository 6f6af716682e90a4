"""The tutorial's Python steps, run as an unmodified script.

The code blocks of Steps 3, 5, 6 and 9 are taken from
docs/tutorials/multi-node-swarm.md (the tutorial as users read it), joined,
and run in a fresh Python process:

* against S3 exactly as written: the S3 test server listens where the
  tutorial expects MinIO (localhost:9000, bucket apiary-data, apiary/apiary123);
* against a local directory, with the one `storage=` argument replaced.

Then the printed numbers are checked against pandas on the frame's data,
read back with the `deltalake` package (the open-format promise).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from deltalake import DeltaTable

import s3server

TUTORIAL = Path(__file__).resolve().parents[2] / "docs" / "tutorials" / "multi-node-swarm.md"
STEPS = ("Step 3", "Step 5", "Step 6", "Step 9")
TUTORIAL_STORAGE = 'storage="s3://apiary-data/swarm"'
PAGES = {"/home", "/products", "/about", "/pricing", "/docs", "/blog"}
COUNTRIES = {"us", "uk", "de", "fr", "jp", "br", "au", "ca"}


def tutorial_script() -> str:
    """The Python code blocks of the chosen steps, in order, unmodified."""
    text = TUTORIAL.read_text()
    sections = re.split(r"^## ", text, flags=re.M)
    blocks = []
    for section in sections:
        if section.startswith(STEPS):
            blocks += re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) >= 6, "the tutorial's python blocks were not found"
    return "\n".join(blocks)


def run_script(script: str, cwd: Path, env: dict) -> str:
    path = cwd / "tutorial.py"
    path.write_text(script)
    proc = subprocess.run(
        [sys.executable, str(path)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"tutorial failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def printed_groups(output: str, keys: set) -> dict:
    """Rows of a printed DataFrame whose first value is one of `keys`: key -> (count, avg)."""
    found = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[1] in keys:
            found[parts[1]] = (int(parts[2]), float(parts[3]))
    return found


def check_against_pandas(output: str, uri: str, storage_options: dict) -> None:
    assert "Cells written: 8" in output, output
    assert "Rows written: 10000" in output, output
    df = DeltaTable(uri, storage_options=storage_options).to_pandas()
    assert len(df) == 10000
    assert sorted(df["event_id"]) == list(range(10000))
    for column, keys in (("page", PAGES), ("country", COUNTRIES)):
        expected = df.groupby(column)["duration_ms"].agg(["count", "mean"])
        got = printed_groups(output, keys)
        assert set(got) == set(expected.index), f"{column}: {got}"
        for key, (count, avg) in got.items():
            assert count == expected.loc[key, "count"], (column, key)
            assert avg == pytest.approx(expected.loc[key, "mean"], rel=1e-5), (column, key)


def test_tutorial_runs_unmodified_against_s3(tmp_path, delta_storage_options):
    with s3server.running(
        str(tmp_path / "minio"), s3_port=9000, bucket="apiary-data", access_key="apiary", secret_key="apiary123"
    ) as env:
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        output = run_script(tutorial_script(), tmp_path, child_env)
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            check_against_pandas(output, "s3://apiary-data/swarm/analytics/events/clicks", delta_storage_options("s3://"))
        finally:
            for k, v in saved.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def test_tutorial_runs_on_a_local_directory(tmp_path):
    root = tmp_path / "root"
    script = tutorial_script()
    assert script.count(TUTORIAL_STORAGE) == 1
    script = script.replace(TUTORIAL_STORAGE, f"storage={str(root)!r}")
    output = run_script(script, tmp_path, dict(os.environ))
    check_against_pandas(output, str(root / "analytics" / "events" / "clicks"), {})
