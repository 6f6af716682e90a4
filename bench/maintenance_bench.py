"""Small writes and compaction: a frame built by single-row INSERTs, queried
before and after OPTIMIZE, against the same rows written in one batch.

Each INSERT commits one cell per partition it touches, so the frame ends
with about as many cells as INSERTs; every query opens them all. OPTIMIZE
rewrites them into one cell per partition. The goal (issue: "the Delta
lifecycle") is that the compacted frame answers within 1.5x of the frame
written in one batch.

    python bench/maintenance_bench.py --inserts 1000
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numpy as np

from apiary import Apiary
from common import clicks, median_seconds
from tutorial_bench import QUERIES

SCHEMA = {"event_id": "int64", "user_id": "utf8", "page": "utf8", "duration_ms": "int64", "country": "utf8"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inserts", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    os.environ["APIARY_DISTRIBUTE_MIN_CELLS"] = "1000000000"
    data = clicks(np.random.default_rng(7), 0, args.inserts)
    with tempfile.TemporaryDirectory() as tmp, Apiary("bench", storage=os.path.join(tmp, "root")) as ap:
        ap.create_hive("analytics")
        ap.create_box("analytics", "events")
        for frame in ("small", "batch"):
            ap.create_frame("analytics", "events", frame, SCHEMA, partition_by=["country"])
        ap.write_to_frame("analytics", "events", "batch", data)
        start = time.perf_counter()
        for row in data.to_pylist():
            ap.sql("INSERT INTO analytics.events.small VALUES ({event_id}, '{user_id}', '{page}', "
                   "{duration_ms}, '{country}')".format(**row))
        insert_s = time.perf_counter() - start

        def cells(frame: str) -> int:
            return ap.query(f"DESCRIBE analytics.events.{frame}").column("cells")[0].as_py()

        queries = {"count(*)": "SELECT count(*) FROM {frame}", **QUERIES}

        def timings(frame: str) -> dict[str, float]:
            name = f"analytics.events.{frame}"
            return {label: median_seconds(lambda: ap.query(sql.format(frame=name)), args.repeat)
                    for label, sql in queries.items()}

        before_cells = cells("small")
        before = timings("small")
        start = time.perf_counter()
        ap.query("OPTIMIZE analytics.events.small")
        optimize_s = time.perf_counter() - start
        after_cells = cells("small")
        after = timings("small")
        batch = timings("batch")
        batch_cells = cells("batch")

    print(f"{args.inserts} single-row INSERTs in {insert_s:.1f} s; OPTIMIZE {optimize_s * 1000:.0f} ms; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, median of {args.repeat}")
    print()
    print(f"| query | {before_cells} cells (INSERTs) | {after_cells} cells (after OPTIMIZE) | "
          f"{batch_cells} cells (one batch) | before / batch | after / batch |")
    print("|---|---|---|---|---|---|")
    for label in queries:
        print(f"| {label} | {before[label] * 1000:.1f} ms | {after[label] * 1000:.1f} ms | "
              f"{batch[label] * 1000:.1f} ms | {before[label] / batch[label]:.2f}x | {after[label] / batch[label]:.2f}x |")


if __name__ == "__main__":
    main()
