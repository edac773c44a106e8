"""What one OWASP CRS inspection costs (ModSecurity v3 and the installed
CRS, `edgeward.waf`): CPU time per transaction for typical requests and a
response, and the share of it spent in the ctypes binding (a transaction
on a rule set with no rules). The figures decide where the engine runs
(docs/policy.md: a worker thread).

    python -m bench owasp_crs [--number N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from edgeward.bench.table import Table
from edgeward.waf import CoreRuleSet, RequestInput, ResponseInput
from edgeward.waf.modsecurity import RulesSet, Transaction

HEADERS = [
    (b"host", b"app.bench"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    (b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    (b"accept-language", b"en-US,en;q=0.5"),
    (b"accept-encoding", b"gzip, deflate, br"),
]


def request(target: bytes, body: bytes = b"", content_type: bytes = b"") -> RequestInput:
    headers = list(HEADERS)
    method = b"GET"
    if body:
        method = b"POST"
        headers += [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    return RequestInput(
        method, target, b"1.1", headers, "192.0.2.1", 5000, "127.0.0.1", 443, body, True
    )


def cpu_us(fn: Callable[[], object], number: int) -> float:
    """Median CPU time of one call in µs (thread time: other load on the
    machine does not count)."""
    samples = []
    for _ in range(5):
        start = time.thread_time()
        for _ in range(number):
            fn()
        samples.append((time.thread_time() - start) / number * 1e6)
    return statistics.median(samples)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench owasp_crs")
    parser.add_argument("--number", type=int, default=20)
    args = parser.parse_args(argv)
    start = time.thread_time()
    crs = CoreRuleSet.load()
    load_ms = (time.thread_time() - start) * 1000
    form = b"&".join(b"field%d=some+text+here" % i for i in range(200))[:4096]
    items = ",".join(json.dumps({"sku": f"A-{i}", "note": "some text"}) for i in range(120))
    doc = ('{"items": [' + items + "]}").encode()[:4096]
    cases: list[tuple[str, Callable[[], object]]] = [
        ("GET, 5 headers", lambda: crs.inspect_request(request(b"/articles?page=2"))),
        (
            "GET, SQL injection (blocked)",
            lambda: crs.inspect_request(request(b"/?id=1'%20or%201=1")),
        ),
        (
            "POST 4 KiB text",
            lambda: crs.inspect_request(request(b"/u", b"x" * 4096, b"text/plain")),
        ),
        (
            "POST 4 KiB form, 200 fields",
            lambda: crs.inspect_request(request(b"/u", form, b"application/x-www-form-urlencoded")),
        ),
        (
            "POST 4 KiB JSON, 240 fields",
            lambda: crs.inspect_request(request(b"/u", doc, b"application/json")),
        ),
        (
            "response, 4 KiB HTML",
            lambda: crs.inspect_response(
                ResponseInput(
                    request(b"/"),
                    200,
                    [(b"content-type", b"text/html")],
                    b"<p>plain page</p>" * 240,
                )
            ),
        ),
    ]
    empty = RulesSet()

    def binding_only() -> None:
        with Transaction(empty) as tx:
            tx.connection("192.0.2.1", 5000, "127.0.0.1", 443)
            tx.request_head(b"GET", b"/articles?page=2", b"1.1", HEADERS)
            tx.request_body(b"")
            tx.logging()

    table = Table(
        f"OWASP CRS {crs.version} on ModSecurity (load: {load_ms:.0f} ms CPU)",
        ["transaction", "CPU µs"],
    )
    table.add("binding + engine, no rules", cpu_us(binding_only, args.number * 5))
    for name, fn in cases:
        table.add(name, cpu_us(fn, max(1, args.number // (10 if "fields" in name else 1))))
    table.print()
