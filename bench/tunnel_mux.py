"""muxado framing and the tunnel's sans-IO sessions: µs per frame and per
proxied exchange (medians of 7 runs).

Per frame (64 frames per call, 200-byte and 16 KiB payloads): a reference
loop that only splits a byte string into frames (header unpack + slice,
nothing else: the floor of any pure-Python framing, measured here so the
other rows can be read as multiples of it on a busy machine), the decoder
(`FrameDecoder.decode`, with its header rules), encoding a DATA frame, and
a `mux.Session` receiving DATA (events out, credit) and sending it.

Per exchange, each side alone (the other side's bytes are made before the
clock starts): the edge's `ServerSession` opens a Proxy stream with header
and request, takes the agent's WNDINC and response + FIN, and closes; the
agent's `ClientSession` reads the header and request, answers and closes.
Four frames cross the wire per exchange. The issue's anchor: a pure-Python
byte-stream framing costs ~1.4 µs per frame.

Through the trio driver: our agent session and our edge session in one
process over a socketpair (no TLS), sequential exchanges (the edge opens a
Proxy stream with the request, the agent reads it and answers with FIN);
CPU µs per exchange for both sides together, driver and sessions included.

    python -m bench tunnel_mux [--quick]
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable

from edgeward.bench.table import Table
from edgeward.bench.timing import median_ns_per_call
from edgeward.tunnel import frames
from edgeward.tunnel.client import ClientSession
from edgeward.tunnel.events import DataReceived
from edgeward.tunnel.messages import BindResp, HttpOpts, ProxyHeader, StreamType
from edgeward.tunnel.mux import Session
from edgeward.tunnel.server import ServerSession

BATCH = 64  # frames per call
REQUEST = b"GET /api/items HTTP/1.1\r\nHost: app.example.test\r\nAccept: */*\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
HEADER = ProxyHeader("ep-1", "192.0.2.10:54321", "https", "3")
EXCHANGE_FRAMES = 4  # edge: SYN with header + request, FIN; agent: WNDINC, response + FIN
_HEADER = struct.Struct(">II")


def _blob(size: int) -> bytes:
    return b"".join(frames.encode(frames.Data(2, b"x" * size)) for _ in range(BATCH))


def reference(size: int) -> Callable[[], object]:
    blob = _blob(size)
    unpack = _HEADER.unpack_from

    def run() -> object:
        pos, end, out = 0, len(blob), []
        while end - pos >= 8:
            word, stream_id = unpack(blob, pos)
            stop = pos + 8 + (word >> 8)
            out.append((stream_id, blob[pos + 8 : stop]))
            pos = stop
        return out

    return run


def decode(size: int) -> Callable[[], object]:
    decoder = frames.FrameDecoder(1 << 20)
    blob = _blob(size)
    return lambda: decoder.decode(blob)


def encode(size: int) -> Callable[[], object]:
    payload = b"x" * size

    def run() -> None:
        for _ in range(BATCH):
            frames.data_header(2, size) + payload

    return run


def session_receive(size: int) -> Callable[[], object]:
    session = Session(client=True, window=1 << 62, max_frame_size=1 << 20)
    session.receive_data(frames.encode(frames.Data(2, b"\0\0\0\3", syn=True)))
    blob = _blob(size)

    def run() -> None:
        for event in session.receive_data(blob):
            assert isinstance(event, DataReceived)
            session.acknowledge(2, len(event.data))
        session.data_to_send()

    return run


def session_send(size: int) -> Callable[[], object]:
    session = Session(client=False, window=1 << 62, max_frame_size=1 << 20)
    stream_id = session.open_stream(3)
    payload = b"x" * size

    def run() -> None:
        for _ in range(BATCH):
            session.send_data(stream_id, payload)
        session.data_to_send()

    return run


def wndinc_receive() -> Callable[[], object]:
    session = Session(client=False)
    stream_id = session.open_stream(3)
    blob = b"".join(frames.encode_wndinc(stream_id, 1) for _ in range(BATCH))
    return lambda: session.receive_data(blob)


# --- whole exchanges, one side at a time ---------------------------------------------------


def edge_exchanges(count: int) -> Callable[[], object]:
    """`count` exchanges on a fresh ServerSession; the agent's answers are
    made beforehand (its stream ids are known: 2, 4, 6, ...)."""
    prefix = 4 + len(HEADER.encode())
    answers = [
        frames.encode_wndinc(sid, prefix + len(REQUEST))
        + frames.encode(frames.Data(sid, RESPONSE, fin=True))
        for sid in range(2, 2 + 2 * count, 2)
    ]

    def run() -> None:
        server = ServerSession()
        for answer in answers:
            sid = server.open_proxy(HEADER, REQUEST)
            server.data_to_send()
            for event in server.receive_data(answer, 0.0):
                if isinstance(event, DataReceived):
                    server.acknowledge(sid, len(event.data))
            server.end_stream(sid)
            server.data_to_send()

    return run


def agent_exchanges(count: int) -> Callable[[], object]:
    requests = [
        frames.syn_header(sid, StreamType.PROXY, 4 + len(HEADER.encode()) + len(REQUEST))
        + HEADER.encode()
        + REQUEST
        + frames.data_header(sid, 0, fin=True)
        for sid in range(2, 2 + 2 * count, 2)
    ]
    bound = BindResp("ep-1", "https://app.example.test", "https", HttpOpts(), token="t")

    def run() -> None:
        client = ClientSession()
        client.endpoints["ep-1"] = bound
        sid = 2
        for request in requests:
            for event in client.receive_data(request, 0.0):
                if isinstance(event, DataReceived):
                    client.acknowledge(sid, len(event.data))
            client.send_data(sid, RESPONSE, fin=True)
            client.data_to_send()
            sid += 2

    return run


def driver_exchanges(count: int) -> float:
    """CPU seconds for `count` sequential exchanges through both drivers."""
    import socket
    import time

    import trio

    from edgeward.tunnel.messages import Auth, AuthResp, Bind
    from edgeward.tunnel.trio_session import ServerTunnel, open_agent_session, serve_agent

    class Accept:
        async def authenticate(self, tunnel: ServerTunnel, auth: Auth) -> AuthResp:
            return AuthResp("3", "s")

        async def bind(self, tunnel: ServerTunnel, bind: Bind) -> BindResp:
            return BindResp("ep-1", "https://a", bind.proto, bind.opts, token="t")

        async def unbound(self, tunnel: ServerTunnel, endpoint_id: str) -> None:
            pass

    cpu = 0.0

    async def main() -> None:
        nonlocal cpu
        left, right = (trio.socket.from_stdlib_socket(s) for s in socket.socketpair())
        async with trio.open_nursery() as nursery:
            edge: ServerTunnel = await nursery.start(serve_agent, trio.SocketStream(left), Accept())
            async with open_agent_session(trio.SocketStream(right)) as agent:
                await agent.authenticate(Auth())
                await agent.bind(Bind("https", HttpOpts(domain="a")))

                async def answer() -> None:
                    while True:
                        _, stream = await agent.accept()
                        await stream.receive_some()
                        await stream.send_all(RESPONSE)
                        await stream.send_eof()
                        await stream.aclose()

                async with trio.open_nursery() as answering:
                    answering.start_soon(answer)
                    start = time.process_time()
                    for _ in range(count):
                        stream = await edge.open_proxy(HEADER, REQUEST)
                        while await stream.receive_some():
                            pass
                        await stream.aclose()
                    cpu = time.process_time() - start
                    answering.cancel_scope.cancel()
            nursery.cancel_scope.cancel()

    trio.run(main)
    return cpu


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    number = 100 if quick else 1000

    def per_frame(make: Callable[[], Callable[[], object]], n: int = number) -> float:
        return median_ns_per_call(make(), number=n) / BATCH / 1000

    table = Table(
        "muxado frames: µs per frame (× the reference loop)",
        ["operation", "200 B", "×", "16 KiB", "×"],
    )
    ref_small = per_frame(lambda: reference(200))
    ref_large = per_frame(lambda: reference(16384), number // 4)
    rows: list[tuple[str, Callable[[int], Callable[[], object]]]] = [
        ("decode DATA (FrameDecoder.decode)", decode),
        ("encode DATA (header + payload)", encode),
        ("Session.receive_data + acknowledge", session_receive),
        ("Session.send_data + data_to_send", session_send),
    ]
    table.add("reference: split into frames only", ref_small, 1.0, ref_large, 1.0)
    for name, make in rows:
        small = per_frame(lambda make=make: make(200))  # type: ignore[misc]
        large = per_frame(lambda make=make: make(16384), number // 4)  # type: ignore[misc]
        table.add(name, small, small / ref_small, large, large / ref_large)
    wndinc = per_frame(wndinc_receive)
    table.add("Session.receive_data, WNDINC", wndinc, wndinc / ref_small, "", "")
    table.print()

    count = 200
    exchange = Table(
        "one proxied exchange (4 frames), each side alone",
        ["side", "µs", "µs per frame", "× reference"],
    )
    for side, make_run in (
        ("edge: ServerSession", edge_exchanges),
        ("agent: ClientSession", agent_exchanges),
    ):
        cost = median_ns_per_call(make_run(count), number=max(1, number // 100)) / count / 1000
        per = cost / EXCHANGE_FRAMES
        exchange.add(side, cost, per, per / ref_small)
    exchange.print()
    runs = 2000 if quick else 10_000
    samples = sorted(driver_exchanges(runs) / runs * 1e6 for _ in range(3))
    driver = Table("through the trio drivers (socketpair, no TLS)", ["exchanges", "CPU µs each"])
    driver.add(runs, samples[1])
    driver.print()
    print("anchor (issue #10): a pure-Python byte-stream framing ~1.4 µs per frame", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
