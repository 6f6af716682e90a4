"""What the benchmarks share: the tutorial's click data and median timing."""

from __future__ import annotations

import statistics
import time

import numpy as np
import pyarrow as pa

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
