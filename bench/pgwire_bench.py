"""Postgres gateway benchmark: `SELECT 1` round trips, the tutorial GROUP BY
over pgwire vs. the SDK on the same frame, and `COPY` ingest.

`apiary serve` (release build, path in $APIARY_BIN) serves a local
directory root; the SDK (release build) opens the same root in this process.
Both run with distribution off, so the comparison is the protocol alone.

    python bench/pgwire_bench.py --rows 10000000
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import time

import psycopg

from common import PAGES, clicks_root, median_seconds, serve

GROUP_BY = """SELECT country, COUNT(*) AS events, AVG(duration_ms) AS avg_duration
              FROM analytics.events.clicks GROUP BY country ORDER BY events DESC"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--copy-rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    tmp, root, ap = clicks_root(args.rows)
    server, dsn = serve(root)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            laps = []
            for _ in range(2000):
                start = time.perf_counter()
                conn.execute("SELECT 1").fetchone()
                laps.append(time.perf_counter() - start)
            laps.sort()
            p50, p99 = laps[len(laps) // 2], laps[int(len(laps) * 0.99)]

            def over_pgwire():
                return conn.execute(GROUP_BY).fetchall()

            def through_sdk():
                return ap.query(GROUP_BY)

            assert sorted(r[1] for r in over_pgwire()) == sorted(through_sdk().column("events").to_pylist())
            wire = median_seconds(over_pgwire, args.repeat)
            sdk = median_seconds(through_sdk, args.repeat)

            conn.execute("CREATE TABLE analytics.events.loaded (id BIGINT, page TEXT, duration_ms BIGINT)")
            buffer = io.StringIO()
            for i in range(args.copy_rows):
                buffer.write(f"{i}\t{PAGES[i % len(PAGES)]}\t{i % 30000}\n")
            data = buffer.getvalue().encode()
            start = time.perf_counter()
            with conn.cursor() as cur:
                with cur.copy("COPY analytics.events.loaded FROM STDIN") as copy:
                    for offset in range(0, len(data), 1 << 20):
                        copy.write(data[offset:offset + (1 << 20)])
            copy_s = time.perf_counter() - start
            loaded = conn.execute("SELECT COUNT(*) FROM analytics.events.loaded").fetchone()[0]
            assert loaded == args.copy_rows, loaded
    finally:
        server.terminate()
        server.wait(timeout=30)
        ap.shutdown()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; python {platform.python_version()}; rows {args.rows:,}")
    print(f"SELECT 1 over pgwire: p50 {p50 * 1000:.3f} ms, p99 {p99 * 1000:.3f} ms (2000 round trips)")
    print(f"tutorial GROUP BY country: pgwire {wire * 1000:.1f} ms, SDK {sdk * 1000:.1f} ms, "
          f"pgwire overhead {100 * (wire / sdk - 1):+.1f} %")
    print(f"COPY {args.copy_rows:,} rows: {copy_s:.2f} s = {args.copy_rows / copy_s:,.0f} rows/s")


if __name__ == "__main__":
    main()
