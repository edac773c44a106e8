"""`python -m bench CASE [ARGS...]` runs one bench case (module `bench.<case>`
with `main(argv: list[str]) -> None`); `python -m bench all` runs every case
with defaults; no argument lists the cases."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bench
from edgeward.bench.processes import interpreter

NOT_CASES: set[str] = set()  # modules of bench/ that are not cases


def cases() -> list[str]:
    names = (m.name for m in pkgutil.iter_modules(bench.__path__))
    return sorted(n for n in names if n not in NOT_CASES and not n.startswith("_"))


def main(argv: list[str]) -> int:
    if not argv:
        print("bench cases:", ", ".join(cases()) or "(none)")
        return 0
    name, rest = argv[0], argv[1:]
    print(f"python: {interpreter()}", flush=True)  # the edges run on it too
    if name == "all":
        for case in cases():
            importlib.import_module(f"bench.{case}").main([])
        return 0
    if name not in cases():
        print(f"unknown bench case {name!r}; known: {', '.join(cases())}", file=sys.stderr)
        return 2
    importlib.import_module(f"bench.{name}").main(rest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
