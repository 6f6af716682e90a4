"""Many writers on one frame in S3: every commit lands, nothing is lost."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from apiary import Apiary

WRITERS = 8
BATCHES = 50
ROWS = 20

WRITER = """
import sys
import pyarrow as pa
from apiary import Apiary

storage, writer, batches, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
with Apiary(f"writer{writer}", storage=storage) as ap:
    for b in range(batches):
        first = (writer * batches + b) * rows
        ids = list(range(first, first + rows))
        table = pa.table({"id": ids, "writer": [writer] * rows, "bucket": [i % 4 for i in ids]})
        result = ap.write_to_frame("load", "default", "t", table)
        assert result["rows_written"] == rows, result
print("ok")
"""


def test_concurrent_appenders_on_s3_lose_nothing(s3_env, tmp_path):
    storage = f"s3://{s3_env['APIARY_TEST_S3_BUCKET']}/{uuid.uuid4().hex}"
    with Apiary("setup", storage=storage) as ap:
        ap.create_hive("load")
        ap.create_frame("load", "default", "t", {"id": "int64", "writer": "int64", "bucket": "int64"}, partition_by=["bucket"])
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), storage, str(w), str(BATCHES), str(ROWS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        for w in range(WRITERS)
    ]
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0 and "ok" in out, f"writer failed:\n{out}\n{err}"
    with Apiary("check", storage=storage) as ap:
        got = ap.query("SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS d, MAX(id) AS m FROM load.default.t").to_pylist()[0]
        total = WRITERS * BATCHES * ROWS
        assert got == {"n": total, "d": total, "m": total - 1}
