"""Small writes and compaction: a frame built by single-row INSERTs, queried
before and after OPTIMIZE, and built again on a node with automatic
maintenance on, against the same rows written in one batch.

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
    os.environ["APIARY_AUTO_MAINTENANCE"] = "off"
    data = clicks(np.random.default_rng(7), 0, args.inserts)
    auto_cells, auto, auto_insert_s = automatic(data, args.repeat)
    with tempfile.TemporaryDirectory() as tmp, Apiary("bench", storage=os.path.join(tmp, "root")) as ap:
        ap.create_hive("analytics")
        ap.create_box("analytics", "events")
        for frame in ("small", "batch"):
            ap.create_frame("analytics", "events", frame, SCHEMA, partition_by=["country"])
        ap.write_to_frame("analytics", "events", "batch", data)
        start = time.perf_counter()
        insert_rows(ap, "small", data)
        insert_s = time.perf_counter() - start

        def timings(frame: str) -> dict[str, float]:
            return frame_timings(ap, frame, args.repeat)

        def cells(frame: str) -> int:
            return frame_cells(ap, frame)

        before_cells = cells("small")
        before = timings("small")
        start = time.perf_counter()
        ap.query("OPTIMIZE analytics.events.small")
        optimize_s = time.perf_counter() - start
        after_cells = cells("small")
        after = timings("small")
        batch = timings("batch")
        batch_cells = cells("batch")

    print(f"{args.inserts} single-row INSERTs in {insert_s:.1f} s ({auto_insert_s:.1f} s with automatic "
          f"maintenance on); OPTIMIZE {optimize_s * 1000:.0f} ms; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, median of {args.repeat}")
    print()
    print(f"| query | {before_cells} cells (INSERTs) | {after_cells} cells (after OPTIMIZE) | "
          f"{auto_cells} cells (automatic maintenance) | {batch_cells} cells (one batch) | "
          f"before / batch | after / batch | automatic / batch |")
    print("|---|---|---|---|---|---|---|---|")
    for label in QUERIES_WITH_COUNT:
        print(f"| {label} | {before[label] * 1000:.1f} ms | {after[label] * 1000:.1f} ms | "
              f"{auto[label] * 1000:.1f} ms | {batch[label] * 1000:.1f} ms | "
              f"{before[label] / batch[label]:.2f}x | {after[label] / batch[label]:.2f}x | "
              f"{auto[label] / batch[label]:.2f}x |")


QUERIES_WITH_COUNT = {"count(*)": "SELECT count(*) FROM {frame}", **QUERIES}


def insert_rows(ap: Apiary, frame: str, data) -> None:
    for row in data.to_pylist():
        ap.sql(f"INSERT INTO analytics.events.{frame} VALUES ({{event_id}}, '{{user_id}}', '{{page}}', "
               "{duration_ms}, '{country}')".format(**row))


def frame_cells(ap: Apiary, frame: str) -> int:
    return ap.query(f"DESCRIBE analytics.events.{frame}").column("cells")[0].as_py()


def frame_timings(ap: Apiary, frame: str, repeat: int) -> dict[str, float]:
    name = f"analytics.events.{frame}"
    return {label: median_seconds(lambda: ap.query(sql.format(frame=name)), repeat)
            for label, sql in QUERIES_WITH_COUNT.items()}


def automatic(data, repeat: int) -> tuple[int, dict[str, float], float]:
    """The same INSERTs on a node whose automatic maintenance looks every
    second; timed once it has left fewer than its threshold of small cells."""
    settings = {"APIARY_AUTO_MAINTENANCE": "on", "APIARY_MAINTENANCE_INTERVAL": "1s"}
    saved = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    try:
        with tempfile.TemporaryDirectory() as tmp, Apiary("bench-auto", storage=os.path.join(tmp, "root")) as ap:
            ap.create_hive("analytics")
            ap.create_box("analytics", "events")
            ap.create_frame("analytics", "events", "auto", SCHEMA, partition_by=["country"])
            start = time.perf_counter()
            insert_rows(ap, "auto", data)
            insert_s = time.perf_counter() - start
            deadline = time.time() + 30
            while frame_cells(ap, "auto") >= 100 and time.time() < deadline:
                time.sleep(0.5)
            return frame_cells(ap, "auto"), frame_timings(ap, "auto", repeat), insert_s
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


if __name__ == "__main__":
    main()
