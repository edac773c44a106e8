"""Small helpers shared by the bench cases: timing with medians, tables."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


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


@dataclass
class Table:
    """A fixed-width table printed to stdout, one row per measurement."""

    title: str
    columns: Sequence[str]
    rows: list[Sequence[object]] = field(default_factory=list)

    def add(self, *row: object) -> None:
        self.rows.append(row)

    def render(self) -> str:
        cells = [[_fmt(c) for c in row] for row in [self.columns, *self.rows]]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        lines = [f"## {self.title}"]
        for n, row in enumerate(cells):
            lines.append(
                "  ".join(
                    c.rjust(w) if i else c.ljust(w)
                    for i, (c, w) in enumerate(zip(row, widths, strict=True))
                )
            )
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def print(self) -> None:
        print(self.render(), flush=True)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
