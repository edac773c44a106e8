"""muxado framing and the sans-IO session: microseconds per frame.

Measured (medians): encoding and decoding alone (`frames`), the session
receiving frames (`mux.Session.receive_data`, events out) and sending them
(`send_data` + `data_to_send`), for small DATA frames (a 200-byte request
or response piece), 16 KiB DATA frames (bulk), WNDINC frames, and a whole
proxied exchange as the edge's session sees it (open a Proxy stream with
header and request; receive the agent's WNDINC, response and FIN; FIN).
The issue's anchor: a pure-Python byte-stream framing costs ~1.4 µs per
frame.

    python -m bench tunnel_mux [--quick]
"""

from __future__ import annotations

import sys

from bench.harness import Table, median_ns_per_call
from edgeward.tunnel import frames
from edgeward.tunnel.messages import ProxyHeader
from edgeward.tunnel.mux import Session
from edgeward.tunnel.server import ServerSession

BATCH = 64  # frames per receive_data call


def _data_frames(stream_id: int, size: int) -> bytes:
    payload = b"x" * size
    return b"".join(frames.encode(frames.Data(stream_id, payload)) for _ in range(BATCH))


def _receive_cost(size: int, number: int) -> float:
    """ns per DATA frame of `size` received by a session (one open stream)."""
    session = Session(client=True, window=1 << 30, max_frame_size=1 << 20)
    session.receive_data(frames.encode(frames.Data(2, b"\0\0\0\3", syn=True)))
    blob = _data_frames(2, size)

    def run() -> None:
        for event in session.receive_data(blob):
            session.acknowledge(2, len(event.data))  # type: ignore[union-attr]
        session.data_to_send()

    return median_ns_per_call(run, number=number) / BATCH


def _send_cost(size: int, number: int) -> float:
    session = Session(client=False, window=1 << 62, max_frame_size=1 << 20)
    stream_id = session.open_stream(3)
    session.data_to_send()
    payload = b"x" * size

    def run() -> None:
        for _ in range(BATCH):
            session.send_data(stream_id, payload)
        session.data_to_send()

    return median_ns_per_call(run, number=number) / BATCH


def _decode_cost(size: int, number: int) -> float:
    decoder = frames.FrameDecoder(1 << 20)
    blob = _data_frames(2, size)

    def run() -> None:
        for _ in decoder.feed(blob):
            pass

    return median_ns_per_call(run, number=number) / BATCH


def _encode_cost(size: int, number: int) -> float:
    payload = b"x" * size

    def run() -> None:
        for _ in range(BATCH):
            frames.data_header(2, size) + payload

    return median_ns_per_call(run, number=number) / BATCH


def _wndinc_cost(number: int) -> float:
    session = Session(client=False)
    stream_id = session.open_stream(3)
    session.data_to_send()
    blob = b"".join(frames.encode_wndinc(stream_id, 1) for _ in range(BATCH))

    def run() -> None:
        session.receive_data(blob)

    return median_ns_per_call(run, number=number) / BATCH


REQUEST = b"GET /api/items HTTP/1.1\r\nHost: app.example.test\r\nAccept: */*\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


# edge → agent: SYN (type, header, request), FIN; agent → edge: WNDINC, response + FIN
EXCHANGE_FRAMES = 4


def _exchange_cost(number: int) -> tuple[float, int]:
    """ns per proxied exchange, both sessions (each frame encoded and
    decoded once), and the frames it takes."""
    server = ServerSession()
    header = ProxyHeader("ep-1", "192.0.2.10:54321", "https")
    agent = Session(client=True)

    def run() -> None:
        sid = server.open_proxy(header, REQUEST)
        agent.receive_data(server.data_to_send())
        agent.acknowledge(sid, len(REQUEST) + 200)
        agent.send_data(sid, RESPONSE, fin=True)
        for event in server.receive_data(agent.data_to_send(), 0.0):
            if hasattr(event, "data"):
                server.acknowledge(sid, len(event.data))
        server.end_stream(sid)
        agent.receive_data(server.data_to_send())

    return median_ns_per_call(run, number=number), EXCHANGE_FRAMES


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    number = 200 if quick else 2000
    table = Table("muxado frames (µs per frame, median)", ["operation", "200 B", "16 KiB"])
    table.add(
        "encode DATA (header + payload)",
        _encode_cost(200, number) / 1000,
        _encode_cost(16384, number // 4) / 1000,
    )
    table.add(
        "decode DATA (FrameDecoder)",
        _decode_cost(200, number) / 1000,
        _decode_cost(16384, number // 4) / 1000,
    )
    table.add(
        "session send_data + data_to_send",
        _send_cost(200, number) / 1000,
        _send_cost(16384, number // 4) / 1000,
    )
    table.add(
        "session receive_data + acknowledge",
        _receive_cost(200, number) / 1000,
        _receive_cost(16384, number // 4) / 1000,
    )
    table.add("session receive WNDINC", _wndinc_cost(number) / 1000, "")
    table.print()
    cost, count = _exchange_cost(number * 4)
    exchange = Table("one proxied exchange, edge and agent sessions", ["µs", "frames", "µs/frame"])
    exchange.add(cost / 1000, count, cost / 1000 / count)
    exchange.print()
    print("anchor (issue #10): pure-Python byte-stream framing ~1.4 µs per frame", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
