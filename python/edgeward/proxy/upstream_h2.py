"""HTTP/2 to upstreams (`upstream: {url: ..., protocol: http2}`): gRPC
services and agents that speak h2.

`H2UpstreamPool` keeps multiplexed connections to one upstream:
prior-knowledge h2c to http:// (and unix:) upstreams, ALPN h2 to https://
ones. A stream goes on the first live connection with room under the
upstream's SETTINGS_MAX_CONCURRENT_STREAMS; a new connection is made only
when none has room. Each connection is a sans-IO `edgeward.http2.H2Client`
moved by one reader task and one writer task (in the server's nursery),
which only move bytes; streams queue frames and wake the writer, as the
server-side driver (`proxy/http2.py`) does.

`H2UpstreamStream` is one exchange's request on it. It hands the exchange
the events an HTTP/1.1 upstream's codec would (`ev.Response`, `ev.Data`,
`ev.EndOfMessage` with the trailers), so the exchange relays both kinds of
upstream with the same code: policy phases, body filters, the response
check, the access log. Flow control is backpressure: a DATA frame is
acknowledged only when the exchange takes the next event (the previous one
has gone to the client). Waits are bounded by `timeouts.upstream_response`
(cancel scopes around the exact wait).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import ssl
import time
from collections.abc import Callable

import trio

from edgeward.config import Upstream
from edgeward.http1 import events as ev
from edgeward.http2.client import H2Client, H2ClientError
from edgeward.http2.events import (
    Body,
    ClientEvent,
    ConnectionEnded,
    EndBody,
    Headers,
    Response,
    StreamReset,
    WindowOpened,
)
from edgeward.proxy import errors
from edgeward.proxy.dial import client_context, dial
from edgeward.proxy.transport import Transport

log = logging.getLogger("edgeward.proxy")

_HIGH_WATER = 256 * 1024
"""Bytes queued for the upstream past which a sending stream waits for the writer."""

_NOT_FORWARDED = frozenset(
    {
        b"host",
        b"te",
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
    }
)
"""Fields of the HTTP/1-shaped upstream request that HTTP/2 carries
otherwise (`:authority`) or not at all (RFC 9113 §8.2.2)."""

NurseryOf = Callable[[], "trio.Nursery | None"]
_REFUSED_STREAM = 0x7


class Refused(errors.UpstreamFailure):
    """The upstream did not process the stream (REFUSED_STREAM, or above
    the last stream id of its GOAWAY): safe to send again elsewhere."""


def request_headers(request: ev.Request, scheme: bytes) -> Headers:
    """The HTTP/2 header block of an upstream request the exchange built in
    the HTTP/1 shape (`Exchange._upstream_request`): pseudo-headers first,
    `Host` as `:authority`, no connection-specific field, and `te:
    trailers` (the one TE value HTTP/2 allows): the edge takes trailers
    and relays them, and gRPC servers require the field."""
    authority = b""
    out: Headers = []
    for name, value in request.headers:
        if name in _NOT_FORWARDED:
            if name == b"host":
                authority = value
            continue
        out.append((name, value))
    return [
        (b":method", request.method),
        (b":scheme", scheme),
        (b":authority", authority),
        (b":path", request.target),
        (b"te", b"trailers"),
        *out,
    ]


class H2UpstreamStream:
    """One request on an upstream connection. `next_event` and
    `next_nowait` give the response as HTTP/1 events; `send_data` and `end`
    send the request body and its end (with trailers) within the windows;
    `close` resets the stream unless it completed."""

    __slots__ = (
        "_ack",
        "_events",
        "_wakeup",
        "closed",
        "conn",
        "failure",
        "finished",
        "request_ended",
        "stream_id",
    )

    def __init__(self, conn: H2UpstreamConnection, stream_id: int, request_ended: bool) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self._events: collections.deque[tuple[ev.Event, int]] = collections.deque()
        self._wakeup = trio.Event()
        self._ack = 0  # flow of the event handed out last, acknowledged at the next
        self.failure: errors.UpstreamFailure | None = None
        self.finished = False  # the whole response arrived
        self.request_ended = request_ended
        self.closed = False

    # --- from the reader ----------------------------------------------------------

    def deliver(self, event: ClientEvent) -> None:
        events = self._events
        cls = type(event)
        if cls is Body:
            events.append((ev.Data(event.data), event.flow_length))  # type: ignore[union-attr]
        elif cls is Response:
            events.append((ev.Response(event.status, event.headers, b"2"), 0))  # type: ignore[union-attr]
            if event.end_stream:  # type: ignore[union-attr]
                events.append((ev.EndOfMessage(), 0))
                self.finished = True
        elif cls is EndBody:
            events.append((ev.EndOfMessage(event.trailers), 0))  # type: ignore[union-attr]
            self.finished = True
        elif cls is StreamReset and not self.finished:
            code = event.error_code  # type: ignore[union-attr]
            if code == _REFUSED_STREAM and self.failure is None:  # RFC 9113 §8.7: not processed
                self.failure = Refused(errors.UPSTREAM_RESET, "the upstream refused the stream")
            self.fail(f"the upstream reset the stream (error code {code})")
            return
        self._wakeup.set()

    def fail(self, reason: str) -> None:
        """The stream cannot go on: the next wait for an event raises, after
        the events that arrived before."""
        if self.failure is None and not self.finished:
            self.failure = errors.UpstreamFailure(errors.UPSTREAM_RESET, reason)
        self._wakeup.set()

    # --- for the exchange -------------------------------------------------------

    def next_nowait(self) -> ev.Event | None:
        """The next response event if one is here, else None. Raises
        `errors.UpstreamFailure` once the stream failed and nothing is left."""
        if self._ack:
            self.conn.client.consumed(self.stream_id, self._ack)
            self._ack = 0
            self.conn.wake()
        if self._events:
            event, self._ack = self._events.popleft()
            return event
        if self.failure is not None:
            raise self.failure
        return None

    async def next_event(self, timeout: float) -> ev.Event:
        """The next response event, waiting at most `timeout` seconds for it
        (`errors.UpstreamFailure` UPSTREAM_TIMEOUT)."""
        event = self.next_nowait()
        while event is None:
            self._wakeup = trio.Event()
            with trio.move_on_after(timeout) as scope:
                await self._wakeup.wait()
            if scope.cancelled_caught:
                raise errors.UpstreamFailure(errors.UPSTREAM_TIMEOUT, self.conn.url)
            event = self.next_nowait()
        return event

    async def send_data(self, data: bytes, timeout: float) -> None:
        """Request body, as the upstream's windows allow (each wait for
        window at most `timeout`)."""
        conn = self.conn
        client = conn.client
        pos, size = 0, len(data)
        try:
            while pos < size:
                if self.failure is not None:
                    raise self.failure
                window = client.send_window(self.stream_id)
                if window < 0:
                    raise errors.UpstreamFailure(errors.UPSTREAM_RESET, "the stream closed")
                if window == 0:
                    await conn.wait_window(timeout)
                    continue
                client.send_data(self.stream_id, data[pos : pos + window])
                pos += window
                await conn.flush(timeout)
        except H2ClientError as exc:
            raise errors.UpstreamFailure(errors.UPSTREAM_RESET, str(exc)) from None

    async def end(self, trailers: Headers, timeout: float) -> None:
        """The end of the request body, with its trailers if any."""
        if self.failure is not None:
            raise self.failure
        try:
            self.conn.client.end_stream(self.stream_id, trailers)
        except H2ClientError as exc:
            raise errors.UpstreamFailure(errors.UPSTREAM_RESET, str(exc)) from None
        self.request_ended = True
        await self.conn.flush(timeout)

    def close(self) -> None:
        """The exchange is done with the stream: reset it unless both sides
        ended (the client went away, a timeout, a policy answered instead)."""
        if self.closed:
            return
        self.closed = True
        conn = self.conn
        if self._ack:
            conn.client.consumed(self.stream_id, self._ack)
            self._ack = 0
        if self.finished and self.request_ended:
            conn.client.stream_over(self.stream_id)
        else:
            conn.client.reset(self.stream_id)
        conn.stream_done(self)


class H2UpstreamConnection:
    """One HTTP/2 connection to an upstream: the reader, the writer, and the
    streams on it."""

    def __init__(self, pool: H2UpstreamPool, transport: Transport) -> None:
        self.pool = pool
        self.url = pool.upstream.url
        self.transport = transport
        self.client = H2Client()
        self.streams: dict[int, H2UpstreamStream] = {}
        self.dead = False
        self.idle_since = time.monotonic()
        self._scope = trio.CancelScope()
        self._out = bytearray()
        self._in_flight = 0
        self._writer_wakeup = trio.Event()
        self._written = trio.Event()
        self._window = trio.Event()

    def open_stream(self, headers: Headers, end_stream: bool) -> H2UpstreamStream:
        """Raises `H2ClientError` when the connection cannot take it."""
        stream_id = self.client.send_request(headers, end_stream)
        stream = H2UpstreamStream(self, stream_id, end_stream)
        self.streams[stream_id] = stream
        self.wake()
        return stream

    def stream_done(self, stream: H2UpstreamStream) -> None:
        self.streams.pop(stream.stream_id, None)
        if not self.streams:
            self.idle_since = time.monotonic()
            if self.client.ended or self.pool.retired:  # no stream will come: close
                self.end("no more streams")
                return
        self.wake()

    @property
    def usable(self) -> bool:
        return not self.dead and self.client.can_open

    # --- tasks -------------------------------------------------------------------

    async def run(self) -> None:
        """Read and write until the connection ends; never raises but
        `Cancelled` (it runs in the server's nursery)."""
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write_loop)
                    await self._read_loop()
                    nursery.cancel_scope.cancel()
        except Exception:  # a bug here must not end the server: the streams fail
            log.exception("edgeward: HTTP/2 upstream connection to %s failed", self.url)
        finally:
            self.end("the connection to the upstream ended")

    async def _read_loop(self) -> None:
        client = self.client
        while not self.dead:
            try:
                data = await self.transport.recv()
            except OSError as exc:
                self.end(f"reading from the upstream failed: {exc}")
                return
            for event in client.receive_data(data):
                cls = type(event)
                if cls is WindowOpened:
                    window, self._window = self._window, trio.Event()
                    window.set()
                elif cls is ConnectionEnded:
                    self.end(event.reason)  # type: ignore[union-attr]
                    return
                else:
                    stream = self.streams.get(event.stream_id)  # type: ignore[union-attr]
                    if stream is not None:
                        stream.deliver(event)
                    elif cls is Body:  # a stream we gave up on: give its window back
                        client.consumed(event.stream_id, event.flow_length)  # type: ignore[union-attr]
            self.wake()  # SETTINGS and PING acknowledgements, window updates

    async def _write_loop(self) -> None:
        """The only writer: sends everything queued, one `send` per round."""
        client = self.client
        try:
            while True:
                data = self._out
                more = client.data_to_send()
                if more:
                    data += more
                if not data:
                    if self.dead:
                        return
                    self._writer_wakeup = trio.Event()
                    await self._writer_wakeup.wait()
                    continue
                self._out = bytearray()
                self._in_flight = len(data)
                await self.transport.send(data)
                self._in_flight = 0
                written, self._written = self._written, trio.Event()
                written.set()
        except OSError as exc:
            self.end(f"writing to the upstream failed: {exc}")

    # --- for the streams ---------------------------------------------------------

    def wake(self) -> None:
        self._writer_wakeup.set()

    async def flush(self, timeout: float) -> None:
        """Hand what is queued to the writer; wait (at most `timeout`) while
        more than `_HIGH_WATER` bytes wait for the socket."""
        self._out += self.client.data_to_send()
        self.wake()
        if len(self._out) + self._in_flight > _HIGH_WATER:
            with trio.move_on_after(timeout) as scope:
                while not self.dead and len(self._out) + self._in_flight > _HIGH_WATER:
                    await self._written.wait()
            if scope.cancelled_caught:
                raise errors.UpstreamFailure(errors.UPSTREAM_TIMEOUT, self.url)
        if self.dead:
            raise errors.UpstreamFailure(errors.UPSTREAM_RESET, "the upstream connection ended")

    async def wait_window(self, timeout: float) -> None:
        """Until the upstream grants send window (at most `timeout`)."""
        with trio.move_on_after(timeout) as scope:
            await self._window.wait()
        if scope.cancelled_caught:
            raise errors.UpstreamFailure(errors.UPSTREAM_TIMEOUT, self.url)
        if self.dead:
            raise errors.UpstreamFailure(errors.UPSTREAM_RESET, "the upstream connection ended")

    def end(self, reason: str) -> None:
        """The connection is over: its streams fail (a clean 502, or a reset
        for a response already started), the pool forgets it."""
        if self.dead:
            return
        self.dead = True
        self.client.close()
        with contextlib.suppress(OSError):  # the GOAWAY, if the socket takes it now
            self.transport.sock.send(self.client.data_to_send())
        for stream in list(self.streams.values()):
            stream.fail(reason)
        self.pool.forget(self)
        self._window.set()
        self._written.set()
        self.wake()
        self._scope.cancel()
        self.transport.close()


class H2UpstreamPool:
    """Multiplexed HTTP/2 connections to one upstream. `nursery_of` gives
    the nursery the connections' tasks run in (the server's)."""

    def __init__(
        self,
        upstream: Upstream,
        nursery_of: NurseryOf,
        *,
        idle_timeout: float,
        connect_timeout: float,
    ) -> None:
        self.upstream = upstream
        self.scheme = b"https" if upstream.scheme == "https" else b"http"
        self._nursery_of = nursery_of
        self._idle_timeout = idle_timeout
        self._connect_timeout = connect_timeout
        self._conns: list[H2UpstreamConnection] = []
        self._opening = trio.Lock()
        self._attempts = 0  # connections tried
        self._failure: errors.UpstreamFailure | None = None  # why the last one failed
        self.retired = False
        self._ssl = client_context(upstream) if upstream.scheme == "https" else None

    async def open_stream(self, headers: Headers, end_stream: bool) -> H2UpstreamStream:
        """A new stream with the request's header block on a connection with
        room (a new one when none has). Raises `errors.UpstreamFailure`."""
        for attempt in (0, 1):
            conn = self._usable() or await self._connection()
            try:
                return conn.open_stream(headers, end_stream)
            except H2ClientError as exc:
                if attempt:
                    raise errors.UpstreamFailure(errors.UPSTREAM_RESET, str(exc)) from None
        raise AssertionError("unreachable")

    async def _connection(self) -> H2UpstreamConnection:
        """A new connection, shared by the streams that wait for it; when
        making it fails, those that waited fail with the same error at once
        (a down upstream costs one connect timeout, not one per request)."""
        attempts = self._attempts
        async with self._opening:
            conn = self._usable()
            if conn is not None:
                return conn
            failure = self._failure
            if self._attempts != attempts and failure is not None:
                raise errors.UpstreamFailure(failure.error, failure.detail)
            self._attempts += 1
            try:
                conn = await self._connect()
            except errors.UpstreamFailure as failure:
                self._failure = failure
                raise
            self._failure = None
            return conn

    def _usable(self) -> H2UpstreamConnection | None:
        for conn in self._conns:
            if conn.usable:
                return conn
        return None

    async def _connect(self) -> H2UpstreamConnection:
        up = self.upstream
        nursery = self._nursery_of()
        if nursery is None:  # not serving (shut down)
            raise errors.UpstreamFailure(errors.UPSTREAM_REFUSED, f"{up.url}: the edge is stopping")
        sock = await dial(up, self._ssl, self._connect_timeout)
        if isinstance(sock, ssl.SSLSocket) and sock.selected_alpn_protocol() != "h2":
            sock.close()
            raise errors.UpstreamFailure(
                errors.UPSTREAM_TLS, f"{up.url}: the upstream did not negotiate h2 (ALPN)"
            )
        conn = H2UpstreamConnection(self, Transport(sock))
        conn.client.initiate()
        self._conns.append(conn)
        nursery.start_soon(conn.run)
        return conn

    def forget(self, conn: H2UpstreamConnection) -> None:
        if conn in self._conns:
            self._conns.remove(conn)

    # (Pools applies a reload through these)
    def reconfigure(self, *, size: int, idle_timeout: float, connect_timeout: float) -> None:
        self._idle_timeout = idle_timeout
        self._connect_timeout = connect_timeout

    def retire(self) -> None:
        """Replaced by a reload: no new streams here; the open ones finish."""
        self.retired = True
        for conn in list(self._conns):
            conn.client.retire()
            if not conn.streams:
                conn.end("retired")

    def expire(self) -> None:
        """End connections without streams for longer than the idle timeout."""
        limit = time.monotonic() - self._idle_timeout
        for conn in list(self._conns):
            if not conn.streams and conn.idle_since < limit:
                conn.end("idle")

    def close(self) -> None:
        for conn in list(self._conns):
            conn.end("the edge is stopping")
