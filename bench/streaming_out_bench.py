"""Reading a large frame out through the gateway: `COPY … TO STDOUT` (text
and binary) and a server-side cursor (psycopg named cursor), each against a
fresh `apiary serve` (release build, path in $APIARY_BIN), reporting rows/s
and the server's peak resident memory (VmHWM).

    python bench/streaming_out_bench.py --rows 20000000
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import psycopg

from common import clicks_root, serve


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def copy_out(dsn: str, statement: str) -> int:
    size = 0
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        with cur.copy(statement) as copy:
            for chunk in copy:
                size += len(chunk)
    return size


def cursor_rows(dsn: str, query: str) -> int:
    rows = 0
    with psycopg.connect(dsn) as conn:
        with conn.cursor(name="bench") as cur:
            cur.itersize = 10_000
            cur.execute(query)
            for _ in cur:
                rows += 1
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000_000)
    args = parser.parse_args()
    tmp, root, ap = clicks_root(args.rows)
    ap.shutdown()

    frame = "analytics.events.clicks"
    runs = [
        ("COPY TO STDOUT, text", lambda dsn: copy_out(dsn, f"COPY {frame} TO STDOUT")),
        ("COPY TO STDOUT, binary", lambda dsn: copy_out(dsn, f"COPY {frame} TO STDOUT (FORMAT binary)")),
        ("named cursor, 10,000 rows per FETCH", lambda dsn: cursor_rows(dsn, f"SELECT * FROM {frame}")),
    ]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; python {platform.python_version()}; "
          f"rows {args.rows:,}")
    for name, run in runs:
        server, dsn = serve(root)
        try:
            start = time.perf_counter()
            result = run(dsn)
            seconds = time.perf_counter() - start
            peak = peak_rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
        unit = "rows" if "cursor" in name else "bytes"
        assert unit == "bytes" or result == args.rows, result
        print(f"{name}: {seconds:.1f} s = {args.rows / seconds:,.0f} rows/s ({result:,} {unit}); "
              f"server peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
