"""The fixed-width tables every bench prints (one row per measurement)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO


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

    def print(self, out: TextIO | None = None) -> None:
        print(self.render(), file=out, flush=True)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
