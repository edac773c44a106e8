"""The built-in upstream `edgeward bench edge` puts behind the edge: every
request on 127.0.0.1:PORT gets a small 200 on a keep-alive connection.

It is an `asyncio.Protocol` that does nothing but find the end of each
request (a Content-Length body is skipped) and write a canned answer, so
it costs the machine a small fraction of what the edge in front of it
does; a real application would only blur what is measured.

    python -m edgeward.bench.upstream PORT
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys

BODY = b"hello from the bench upstream\n"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
    b"content-length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)
_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


class Answer(asyncio.Protocol):
    """One connection: a canned 200 per request, in order."""

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        answers = 0
        while (end := buffer.find(b"\r\n\r\n")) >= 0:
            length = _LENGTH.search(buffer, 0, end + 2)
            size = end + 4 + (int(length.group(1)) if length else 0)
            if len(buffer) < size:
                break
            buffer = buffer[size:]
            answers += 1
        self.buffer = buffer
        if answers and self.transport is not None:
            self.transport.write(RESPONSE * answers)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Answer, "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m edgeward.bench.upstream PORT", file=sys.stderr)
        return 2
    asyncio.run(serve(int(argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
