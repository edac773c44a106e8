"""Medians of repeated calls: the sans-IO benches' clock."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_ns_per_call(fn: Callable[[], object], *, number: int, repeat: int = 7) -> float:
    """Median over `repeat` runs of the mean ns per call of `number` calls."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter_ns() - start) / number)
    return statistics.median(samples)


def median_s(fn: Callable[[], object], *, repeat: int = 7) -> float:
    """Median wall time in seconds of `fn()` over `repeat` runs."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)
