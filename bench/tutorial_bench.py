"""Tutorial-shaped benchmark: Apiary vs. DuckDB on the same Parquet cells.

1. Writes N tutorial-shaped rows (default 10 M) through the SDK in batches,
   partitioned by country, and reports write throughput.
2. Runs the tutorial's two GROUP BY queries through Apiary (`ap.query`) and
   through DuckDB over the very same Parquet files (`read_parquet` with
   hive partitioning), several times each, and reports medians and ratios.

Run with one command (after building the SDK in release mode, see
docs/benchmarks.md):

    python bench/tutorial_bench.py --rows 10000000
"""

from __future__ import annotations

import argparse
import platform
import os
import shutil
import tempfile
import time

import duckdb
import numpy as np

from apiary import Apiary
from common import clicks, median_seconds

QUERIES = {
    "top pages": """
        SELECT page, COUNT(*) AS visits, AVG(duration_ms) AS avg_duration
        FROM {frame} GROUP BY page ORDER BY visits DESC""",
    "countries": """
        SELECT country, COUNT(*) AS events, AVG(duration_ms) AS avg_duration
        FROM {frame} GROUP BY country ORDER BY events DESC""",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--batch-rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--storage", default=None, help="root to use (default: a temporary directory)")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="apiary-bench-")
    storage = args.storage or os.path.join(workdir, "root")
    rng = np.random.default_rng(42)
    batches = [clicks(rng, i, min(args.batch_rows, args.rows - i)) for i in range(0, args.rows, args.batch_rows)]

    with Apiary("bench", storage=storage) as ap:
        ap.create_hive("analytics")
        ap.create_box("analytics", "events")
        ap.create_frame(
            "analytics", "events", "clicks",
            {"event_id": "int64", "user_id": "utf8", "page": "utf8", "duration_ms": "int64", "country": "utf8"},
            partition_by=["country"],
        )
        start = time.perf_counter()
        cells = 0
        for b in batches:
            cells += ap.write_to_frame("analytics", "events", "clicks", b)["cells_written"]
        write_s = time.perf_counter() - start

        frame_dir = os.path.join(storage, "analytics", "events", "clicks")
        parquet = os.path.join(frame_dir, "*", "*.parquet")
        con = duckdb.connect()
        print(f"# {args.rows:,} rows, {cells} cells, {platform.machine()} {os.cpu_count()} cores")
        print(f"write: {write_s:.2f} s, {args.rows / write_s / 1e6:.2f} M rows/s")
        print("| query | Apiary (s) | DuckDB (s) | Apiary / DuckDB |")
        print("|---|---|---|---|")
        for name, sql in QUERIES.items():
            ours = ap.query(sql.format(frame="analytics.events.clicks")).to_pandas()
            theirs = con.execute(sql.format(frame=f"read_parquet('{parquet}', hive_partitioning = true)")).df()
            assert sorted(ours.iloc[:, 1].tolist()) == sorted(theirs.iloc[:, 1].tolist()), name
            t_apiary = median_seconds(lambda: ap.query(sql.format(frame="analytics.events.clicks")), args.repeat)
            t_duck = median_seconds(
                lambda: con.sql(sql.format(frame=f"read_parquet('{parquet}', hive_partitioning = true)")).to_arrow_table(),
                args.repeat,
            )
            print(f"| {name} | {t_apiary:.3f} | {t_duck:.3f} | {t_apiary / t_duck:.2f} |")
    if not args.storage:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
