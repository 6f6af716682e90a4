"""Swarm benchmark: coordination overhead and scan scaling over 1, 2, 4 nodes.

Every node is a separate process embedding an Apiary node (`start()`), all
on one storage root; the measuring process is the coordinator and counts as
the first node. Nothing but the root connects them.

1. Coordination overhead: the median time of a GROUP BY over a tiny frame
   (8 cells, 800 rows) with the coordinator alone, and with 3 nodes (tasks
   handed over through the root, polling warm because queries run back to
   back). Overhead = 3-node time - 1-node time.
2. Scaling: a CPU-bound aggregation over a large frame (default 50 M rows,
   64 cells) on 1 to 4 nodes; efficiency(n) = t1 / (n * tn). All nodes run
   on this machine, so scaling needs at least 4 × a node's cores.

    python bench/swarm_bench.py --rows 50000000 [--root DIR_OR_URI]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa

from apiary import Apiary
from common import median_seconds

TINY = "SELECT country, COUNT(*) AS n FROM bench.swarm.tiny GROUP BY country"
SCAN = """SELECT k % 1000 AS bucket, SUM(v * v % 97) AS s, COUNT(*) AS n
          FROM bench.swarm.big WHERE v % 3 <> 1 GROUP BY k % 1000"""

NODE = """
import sys, time
from apiary import Apiary
ap = Apiary("worker", storage=sys.argv[1]).start()
print("ready", flush=True)
sys.stdin.read()
ap.shutdown()
"""


def tasks_by_node(ap: Apiary, query: str) -> dict:
    df = ap.query(f"EXPLAIN ANALYZE {query}").to_pandas()
    tasks = df[df.task.str.startswith("s")]
    return tasks.groupby("node").size().to_dict()


def grow_swarm(workers: list, root: str, size: int, ap: Apiary) -> None:
    while len(workers) + 1 < size:
        proc = subprocess.Popen([sys.executable, "-c", NODE, root], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        workers.append(proc)
    deadline = time.time() + 30
    while ap.swarm_status()["alive"] != size:
        if time.time() > deadline:
            raise RuntimeError(f"the swarm did not reach {size} nodes")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--cells", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--root", default=None, help="storage root (default: a temporary directory)")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory()
    root = args.root or os.path.join(tmp.name, "root")
    ap = Apiary("bench", storage=root).start()
    ap.create_hive("bench")
    ap.create_box("bench", "swarm")
    ap.create_frame("bench", "swarm", "tiny", {"id": "int64", "country": "utf8"}, partition_by=["country"])
    ap.write_to_frame("bench", "swarm", "tiny", pa.table({
        "id": np.arange(800, dtype=np.int64),
        "country": pa.array([f"c{i % 8}" for i in range(800)]),
    }))
    ap.create_frame("bench", "swarm", "big", {"k": "int64", "v": "int64", "cell": "int32"}, partition_by=["cell"])
    per_cell = args.rows // args.cells
    start = time.perf_counter()
    for cell in range(args.cells):
        base = cell * per_cell
        ap.write_to_frame("bench", "swarm", "big", pa.table({
            "k": np.arange(base, base + per_cell, dtype=np.int64),
            "v": np.arange(base, base + per_cell, dtype=np.int64) * 7 % 1_000_003,
            "cell": np.full(per_cell, cell, dtype=np.int32),
        }))
    print(f"wrote {per_cell * args.cells:,} rows in {args.cells} cells in {time.perf_counter() - start:.1f} s")

    workers: list = []
    results = {}
    try:
        for size in (1, 2, 3, 4):
            grow_swarm(workers, root, size, ap)
            tiny = median_seconds(lambda: ap.query(TINY), 20)
            scan = median_seconds(lambda: ap.query(SCAN), args.repeat)
            spread = tasks_by_node(ap, SCAN)
            results[size] = (tiny, scan)
            print(f"{size} node(s): tiny {tiny * 1000:.1f} ms, scan {scan:.3f} s, tasks per node {sorted(spread.values())}")
    finally:
        for proc in workers:
            proc.stdin.close()
        for proc in workers:
            proc.wait(timeout=60)
        ap.shutdown()

    t1 = results[1][1]
    print()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; python {platform.python_version()}")
    print(f"coordination overhead (tiny frame, 3 nodes - 1 node): {1000 * (results[3][0] - results[1][0]):+.1f} ms")
    for size in (2, 4):
        print(f"scaling efficiency on {size} nodes: {t1 / (size * results[size][1]):.2f}")


if __name__ == "__main__":
    main()
