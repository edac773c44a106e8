"""Writes the seed corpus of the CEL fuzz target: the expressions of the
public conformance data, the Traffic Policy examples' expressions, and a few
hostile shapes. Usage: python seed_corpus.py OUT_DIR (the corpus itself is
not committed)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE = ROOT / "tests" / "expr" / "data" / "cel_conformance.json"

EXTRA = [
    "req.url.path.startsWith('/api/') && req.method in ['GET', 'POST']",
    "req.headers.exists(k, k.startsWith('x-')) || has(req.url.query)",
    "inCidrRanges('10.1.2.3', ['10.0.0.0/8', '::1/128'])",
    "timestamp('2024-01-01T00:00:00Z').getHours('America/New_York')",
    "'%s-%d'.format([s, x]) + string(l.map(v, type(v)))",
    "hello ${req.method} ${x + 1} $${literal}",
    "(" * 40 + "1" + ")" * 40,
    "!" * 100 + "true",
    "a" + ".b" * 80,
    "[" * 70 + "]" * 70,
    "lists.range(100).map(i, lists.range(100).map(j, i * j))",
]


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    sources = list(EXTRA)
    data = json.loads(CONFORMANCE.read_text())
    sources += [case["expr"] for cases in data["files"].values() for case in cases]
    for source in sources:
        raw = source.encode()
        (out / hashlib.sha1(raw).hexdigest()).write_bytes(raw)
    print(f"{len(sources)} seeds in {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
