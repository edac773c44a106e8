"""HTTP/2 server side without I/O: the protocol's own cost per stream.

One connection; requests arrive 16 to a read (as `h2load -m16` sends them),
each is answered with a small response (headers as an upstream's plus our
request id, a 20-byte body), and the output is taken once per batch. The
client side (an h2 client that acknowledges what it receives) is not timed.
Measured in CPU time per stream:

- `h2, stock settings`: h2's `H2Connection` as its defaults have it (header
  validation and normalisation both ways, hpack's encoder with Huffman),
  the events turned into requests as simply as possible;
- `H2Server`: ours (checks in `edgeward.http2.fields`, the stateless cached
  encoder, the caching decoder, END_STREAM on the last DATA frame).

This is the floor under the proxy's HTTP/2 figure: a process that does
nothing but this could serve at most 1e6 / (µs per stream) streams per second
on one core, before routing, the upstream leg and the event loop.

    python -m bench h2 [--batches 400]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import h2.config
import h2.connection
import h2.events

from edgeward.bench.table import Table
from edgeward.http2 import H2Server, Request

BATCH = 16
LOAD_GENERATOR = [
    (b":method", b"GET"),
    (b":path", b"/small"),
    (b":scheme", b"http"),
    (b":authority", b"127.0.0.1:8080"),
    (b"user-agent", b"h2load nghttp2/1.52.0"),
]
BROWSER = [
    (b":method", b"GET"),
    (b":authority", b"app.example.com"),
    (b":scheme", b"https"),
    (b":path", b"/api/v1/items?id=42&sort=desc"),
    (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"),
    (b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    (b"accept-encoding", b"gzip, deflate, br"),
    (b"accept-language", b"en-US,en;q=0.9"),
    (b"cookie", b"session=0123456789abcdef0123456789abcdef"),
    (b"cookie", b"theme=dark"),
]
RESPONSE = [
    (b"server", b"nginx/1.22.1"),
    (b"date", b"Sun, 29 Nov 2026 04:36:55 GMT"),
    (b"content-type", b"text/plain"),
    (b"content-length", b"20"),
]
BODY = b"hello from upstream\n"


class _Stock:
    """h2 with its default configuration, driven the obvious way."""

    def __init__(self) -> None:
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        self.conn.initiate_connection()

    def receive(self, data: bytes) -> list[int]:
        return [
            e.stream_id or 0
            for e in self.conn.receive_data(data)
            if isinstance(e, h2.events.RequestReceived)
        ]

    def respond(self, stream_id: int, request_id: bytes) -> None:
        headers = [(b":status", b"200"), *RESPONSE, (b"edgeward-request-id", request_id)]
        self.conn.send_headers(stream_id, headers)
        self.conn.send_data(stream_id, BODY, end_stream=True)

    def output(self) -> bytes:
        return self.conn.data_to_send()


class _Ours:
    def __init__(self, scheme: bytes) -> None:
        self.server = H2Server(scheme=scheme)  # the connection's: TLS for the browser
        self.server.initiate()

    def receive(self, data: bytes) -> list[int]:
        return [e.stream_id for e in self.server.receive_data(data, 0.0) if type(e) is Request]

    def respond(self, stream_id: int, request_id: bytes) -> None:
        # as the driver ends a small response: head, body and END_STREAM in one call
        head = (200, [*RESPONSE, (b"edgeward-request-id", request_id)])
        if not self.server.finish_response(stream_id, head, BODY, []):
            raise RuntimeError("the client's window is short: the bench's client must ack")

    def output(self) -> bytes:
        out = self.server.data_to_send()
        self.server.all_sent()  # as the driver says once the writer has sent it
        return out


def per_stream_us(
    make: Callable[[], _Stock | _Ours], request: list[tuple[bytes, bytes]], batches: int
) -> float:
    """Median over 5 connections of the CPU µs per stream."""
    samples = []
    ids = iter(range(10**9))
    for _ in range(5):
        server = make()
        client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        client.initiate_connection()
        server.receive(client.data_to_send())
        client.receive_data(server.output())
        server.receive(client.data_to_send())
        spent = 0.0
        for n in range(batches + 20):  # the first 20 warm up
            for _ in range(BATCH):
                client.send_headers(client.get_next_available_stream_id(), request, end_stream=True)
            wire = client.data_to_send()
            start = time.thread_time()
            for stream_id in server.receive(wire):
                server.respond(stream_id, b"%012x" % next(ids))
            out = server.output()
            if n >= 20:
                spent += time.thread_time() - start
            for event in client.receive_data(out):
                if isinstance(event, h2.events.DataReceived) and event.flow_controlled_length:
                    client.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            server.receive(client.data_to_send())  # window updates: not timed
        samples.append(spent * 1e6 / (batches * BATCH))
    return statistics.median(samples)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench h2", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--batches", type=int, default=200)
    args = parser.parse_args(argv)
    table = Table(
        f"HTTP/2 server side, no I/O: CPU per stream ({BATCH} requests per read)",
        ["request", "h2 stock µs", "H2Server µs", "stock / ours", "ceiling streams/s"],
    )
    for name, request in (
        ("load generator (5 fields)", LOAD_GENERATOR),
        ("browser (10 fields)", BROWSER),
    ):
        scheme = dict(request)[b":scheme"]
        stock = per_stream_us(_Stock, request, args.batches)
        ours = per_stream_us(lambda: _Ours(scheme), request, args.batches)  # noqa: B023
        table.add(name, stock, ours, stock / ours, round(1e6 / ours))
    table.print()
