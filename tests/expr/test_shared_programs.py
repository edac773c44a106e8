"""Compiled programs are shared: one `Program` evaluated from many threads at
once (as the proxy's workers do) gives every thread its own lazy reads and
its own results, including the regex a program builds on first use."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

RULE = (
    "req.headers['user-agent'][0].matches('(?i)(bot|crawler)') "
    "|| req.headers.exists(k, k.startsWith('x-debug')) "
    "|| inCidrRanges(conn.client_ip, ['10.0.0.0/8'])"
)


def _context(i: int) -> dict[str, Any]:
    agent = "GoodBot/1.0" if i % 3 == 0 else "curl/8"
    headers = {"user-agent": [agent]} | ({"x-debug-id": ["1"]} if i % 3 == 1 else {})
    return {"req": {"headers": headers}, "conn": {"client_ip": f"10.0.0.{i % 256}"}}


def test_one_program_many_threads(cel: Any) -> None:
    program = cel.compile(RULE)
    expected = [program.evaluate(_context(i)) for i in range(300)]
    fresh = cel.compile(RULE)  # its regex is built under contention
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: fresh.evaluate(_context(i)), range(300)))
    assert results == expected
    assert all(results)  # every context matches one way or another
    outside = {"req": {"headers": {"user-agent": ["curl/8"]}}, "conn": {"client_ip": "192.0.2.1"}}
    assert program.evaluate(outside) is False
