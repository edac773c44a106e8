"""The admin listener (`admin: {address: ...}`, off by default): `/metrics`
in Prometheus text format, `/healthz` (the process answers) and `/readyz`
(the listeners are bound and the edge is not draining).

It is a socket of its own, never one of the public listeners, and it
serves nothing else: a few requests a minute from a scraper or a probe,
so it is plain h11 on trio streams, one request per connection, each
bounded in time, few at once."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import h11
import trio
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger("edgeward.proxy")

_TIMEOUT = 10.0  # seconds for one admin request, read to written
_MAX_REQUEST = 16 * 1024
_CONCURRENT = 8


class Admin:
    def __init__(
        self, sock: socket.socket, registry: CollectorRegistry, ready: Callable[[], bool]
    ) -> None:
        self.sock = sock
        self.registry = registry
        self.ready = ready
        self._limit = trio.Semaphore(_CONCURRENT)

    async def serve(self) -> None:
        listener = trio.SocketListener(trio.socket.from_stdlib_socket(self.sock))
        await trio.serve_listeners(self._handle, [listener])

    async def _handle(self, stream: trio.abc.Stream) -> None:
        async with stream, self._limit:
            with trio.move_on_after(_TIMEOUT):
                try:
                    await self._one(stream)
                except (trio.BrokenResourceError, h11.ProtocolError) as exc:
                    log.debug("admin: %s", exc)

    async def _one(self, stream: trio.abc.Stream) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_REQUEST)
        request: h11.Request | None = None
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(_MAX_REQUEST)
                conn.receive_data(bytes(data))
                if not data and conn.their_state is not h11.DONE:
                    return
                continue
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
        if request is None:
            return
        status, content_type, body = self.answer(request.method, request.target)
        headers = [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            (b"connection", b"close"),
        ]
        out = conn.send(h11.Response(status_code=status, headers=headers)) or b""
        if request.method != b"HEAD":
            out += conn.send(h11.Data(data=body)) or b""
        out += conn.send(h11.EndOfMessage()) or b""
        await stream.send_all(out)

    def answer(self, method: bytes, target: bytes) -> tuple[int, bytes, bytes]:
        """(status, content type, body) for one admin request."""
        text = b"text/plain; charset=utf-8"
        if method not in (b"GET", b"HEAD"):
            return 405, text, b"only GET and HEAD\n"
        path = target.partition(b"?")[0]
        if path == b"/metrics":
            return 200, CONTENT_TYPE_LATEST.encode(), generate_latest(self.registry)
        if path == b"/healthz":
            return 200, text, b"ok\n"
        if path == b"/readyz":
            if self.ready():
                return 200, text, b"ready\n"
            return 503, text, b"not ready\n"
        return 404, text, b"not found: /metrics, /healthz, /readyz\n"
