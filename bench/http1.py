"""HTTP/1.1 codecs: one proxied exchange, end to end through both codecs.

The proxy's work per request: its server codec parses the client's request
and its client codec re-serialises it upstream; the client codec parses the
upstream response and the server codec serialises it back. Measured for a
single keep-alive exchange (GET, ~1 KiB response) and for a pipelined batch
of 16 requests arriving in one read. Compared: the fast path compiled
(Cython), the same source as pure Python, and the h11 reference codec (our
wrapper, and bare h11 for what the wrapper costs).

    python -m bench http1 [--quick]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import h11

from edgeward.bench.table import Table
from edgeward.http1 import NEED_DATA, Data, EndOfMessage, Request, Response
from edgeward.http1 import fast as fast_py
from edgeward.http1.h11codec import H11ClientCodec, H11ServerCodec

REQUEST = (
    b"GET /api/v1/items?id=42&sort=desc HTTP/1.1\r\n"
    b"Host: app.example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)\r\n"
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    b"Accept-Encoding: gzip, deflate, br\r\n"
    b"Accept-Language: en-US,en;q=0.9\r\n"
    b"Cookie: session=0123456789abcdef0123456789abcdef; theme=dark\r\n"
    b"Connection: keep-alive\r\n"
    b"X-Request-Id: 7f3c9a2e-5b1d-4c8e-9f0a-1b2c3d4e5f60\r\n"
    b"\r\n"
)
BODY = b"x" * 1024
RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Server: upstream\r\n"
    b"Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: 1024\r\n"
    b"Cache-Control: no-cache\r\n"
    b"X-Upstream-Time: 3ms\r\n"
    b"\r\n" + BODY
)
PIPELINE = 16


def exchange(server: Any, client: Any, batch: int) -> None:
    """`batch` requests arrive in one read; each is forwarded, answered and
    sent back before the next is parsed (a proxy's order of work)."""
    server.receive_data(REQUEST * batch)
    for _ in range(batch):
        request = server.next_event()
        server.next_event()  # EndOfMessage
        client.send(Request(request.method, request.target, request.headers))
        client.send(EndOfMessage())
        client.receive_data(RESPONSE)
        response = client.next_event()
        data = client.next_event()
        client.next_event()  # EndOfMessage
        client.start_next_cycle()
        server.send(Response(response.status_code, response.headers, reason=response.reason))
        server.send(Data(data.data))
        server.send(EndOfMessage())
        server.start_next_cycle()
    assert server.next_event() is NEED_DATA


def bare_h11_exchange(server: h11.Connection, client: h11.Connection, batch: int) -> None:
    server.receive_data(REQUEST * batch)
    for _ in range(batch):
        request = server.next_event()
        server.next_event()
        client.send(
            h11.Request(method=request.method, target=request.target, headers=request.headers)
        )
        client.send(h11.EndOfMessage())
        client.receive_data(RESPONSE)
        response = client.next_event()
        data = client.next_event()
        client.next_event()
        client.start_next_cycle()
        server.send(h11.Response(status_code=response.status_code, headers=response.headers))
        server.send(h11.Data(data=data.data))
        server.send(h11.EndOfMessage())
        server.start_next_cycle()
    assert server.next_event() is h11.NEED_DATA


def cpu_ns_per_call(fn: Callable[[], object], *, number: int, repeat: int = 9) -> float:
    """Median over `repeat` runs of the mean CPU time (this thread's) per call:
    steadier than wall time on a machine shared with other work."""
    samples = []
    for _ in range(repeat):
        start = time.thread_time_ns()
        for _ in range(number):
            fn()
        samples.append((time.thread_time_ns() - start) / number)
    return statistics.median(samples)


def _codecs() -> dict[str, Callable[[int], None]]:
    def run_with(server_cls: Any, client_cls: Any) -> Callable[[int], None]:
        server, client = server_cls(), client_cls()
        return lambda batch: exchange(server, client, batch)

    out = {}
    try:
        from edgeward.http1 import _fast as fast_c  # type: ignore[attr-defined]

        out["fast path, compiled"] = run_with(fast_c.FastServerCodec, fast_c.FastClientCodec)
    except ImportError:
        print("(fast path not compiled: pip install -e . with Cython to compare)")
    out["fast path, pure Python"] = run_with(fast_py.FastServerCodec, fast_py.FastClientCodec)
    out["h11 codec (ours)"] = run_with(H11ServerCodec, H11ClientCodec)
    bare = h11.Connection(h11.SERVER), h11.Connection(h11.CLIENT)
    out["bare h11"] = lambda batch: bare_h11_exchange(*bare, batch)
    return out


def forwarding_table(number: int) -> None:
    """The per-request header rewriting of the proxy, both builds."""
    from edgeward.http1 import forwarding as forwarding_py

    builds = {"pure Python": forwarding_py}
    try:
        from edgeward.http1 import _forwarding as forwarding_c  # type: ignore[attr-defined]

        builds = {"compiled": forwarding_c, **builds}
    except ImportError:
        pass
    server = fast_py.FastServerCodec()
    server.receive_data(REQUEST)
    headers = server.next_event().headers  # type: ignore[union-attr]
    table = Table(
        "http1: strip_hop_by_hop + add_forwarding on the request above",
        ["build", "µs/request (CPU)", "speed-up vs pure"],
    )
    timings = {
        name: cpu_ns_per_call(
            lambda m=module: m.add_forwarding(
                m.strip_hop_by_hop(headers),
                "203.0.113.7",
                b"https",
                b"app.example.com",
                trusted=False,
            ),
            number=number * 5,
        )
        for name, module in builds.items()
    }
    for name, ns in timings.items():
        table.add(name, ns / 1000, timings["pure Python"] / ns)
    table.print()


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    number = 200 if quick else 2000
    codecs = _codecs()
    for batch, title in ((1, "one exchange"), (PIPELINE, f"pipelined batch of {PIPELINE}")):
        timings = {
            name: cpu_ns_per_call(
                lambda run=run, batch=batch: run(batch), number=max(number // batch, 20)
            )
            / batch
            for name, run in codecs.items()
        }
        baseline = timings["h11 codec (ours)"]
        table = Table(
            f"http1: {title} (parse + serialise, request and response)",
            ["codec", "µs/exchange (CPU)", "exchanges/s", "speed-up vs h11 codec"],
        )
        for name, ns in timings.items():
            table.add(name, ns / 1000, 1e9 / ns, baseline / ns)
        table.print()
    forwarding_table(number)


if __name__ == "__main__":
    main(sys.argv[1:])
