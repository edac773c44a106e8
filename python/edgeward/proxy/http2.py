"""The HTTP/2 connection driver: one reader loop feeding `H2Server`, worker
tasks each running one stream's `ProxyExchange` at a time, and one writer task
that sends whatever h2 has queued.

Workers are kept: a finished worker parks and takes the connection's next
stream, so a stream costs a task switch instead of a new task and a cancel
scope (together ~10 µs, a tenth of a small request). A worker's cancel scope
is renewed only after it was used to abort a stream the client reset.

Streams never write to the socket themselves: they queue frames in h2 and
wake the writer, which sends everything queued by all streams in one system
call per scheduler round (with many streams in flight that is one send for
many responses, instead of one each).

Backpressure both ways: request body bytes are acknowledged to the client
only once the exchange has passed them upstream (the client's window
bounds what we buffer); response bytes wait for the client's window, and a
stream (or the reader) that finds more than `_HIGH_WATER` bytes waiting for
the socket waits for the writer.
"""

from __future__ import annotations

import collections
import logging

import outcome
import trio
from trio.lowlevel import Abort, Task, current_task, reschedule, wait_task_rescheduled

from edgeward.hooks import Header, RequestHead
from edgeward.http2 import (
    Body,
    ConnectionEnded,
    EndBody,
    H2Limits,
    H2Server,
    Request,
    StreamReset,
    WindowOpened,
)
from edgeward.proxy import errors
from edgeward.proxy.context import ConnContext
from edgeward.proxy.exchange import ClientBodyError, ProxyExchange
from edgeward.proxy.transport import Transport
from edgeward.proxy.watchdog import Timer

log = logging.getLogger("edgeward.proxy")

_BODY_PIECE = 256 * 1024
"""Request body handed to the exchange at once, at most (plus one frame)."""

_MAX_IDLE_WORKERS = 32
"""Parked workers kept per connection; more end after a burst of streams."""

_HIGH_WATER = 256 * 1024
"""Bytes queued for the client past which producers wait for the writer."""

_ENHANCE_YOUR_CALM = 0xB


class Http2Connection:
    def __init__(self, ctx: ConnContext, transport: Transport) -> None:
        self.ctx = ctx
        self.transport = transport
        limits = ctx.config.limits
        self.h2 = H2Server(
            H2Limits(
                max_concurrent_streams=limits.h2_max_concurrent_streams,
                max_header_list_size=limits.max_header_bytes,
                max_resets=limits.h2_max_resets,
                reset_window=limits.h2_reset_window,
            ),
            scheme=ctx.runtime.listener.scheme.encode(),  # https on TLS: the transport's
        )
        self.streams: dict[int, H2Stream] = {}
        self._out = bytearray()  # taken from h2, not yet handed to the writer
        self._in_flight = 0  # bytes the writer is sending right now
        # Hand-offs are made only when someone waits: the parked writer task
        # (woken by `_wake_writer`), and events created by their first waiter.
        self._writer: Task | None = None
        self._written: trio.Event | None = None  # set after the next send
        self._closing = False  # the writer sends what is left, then returns
        self._broken = False  # a send failed: the client is gone
        self._window: trio.Event | None = None  # set when the client grants window
        self._draining = False
        self._nursery: trio.Nursery | None = None
        self._idle_workers: list[Task] = []
        self._read_scope = trio.CancelScope()
        self._stream_done: trio.Event | None = None  # set when a stream ends

    async def run(self, initial: bytes) -> None:
        h2 = self.h2
        h2.initiate()
        watchdog = self.ctx.services.watchdog
        send_timer = watchdog.add()
        self.transport.send_timeout = (send_timer, self.ctx.config.timeouts.client_send)
        try:
            async with trio.open_nursery() as writer:
                writer.start_soon(self._write_loop)
                try:
                    async with trio.open_nursery() as nursery:
                        self._nursery = nursery
                        with self._read_scope:
                            await self._read_loop(initial)
                        # client done or GOAWAY: let open streams finish, up to the drain timeout
                        with trio.move_on_after(self.ctx.config.timeouts.drain):
                            while self.streams:
                                await self._wait_streams()
                        self._nursery = None  # closed to new tasks from here on
                        nursery.cancel_scope.cancel()
                finally:
                    self._closing = True  # the writer sends the last frames (GOAWAY), then ends
                    self._wake_writer()
        finally:
            watchdog.remove(send_timer)

    async def _wait_streams(self) -> None:
        done = self._stream_done = trio.Event()
        await done.wait()

    def _wake_writer(self) -> None:
        """Something was queued (or the connection is closing): the writer
        sends it in its next round. Free when the writer is already awake."""
        writer = self._writer
        if writer is not None:
            self._writer = None
            reschedule(writer)

    def close(self, error_code: int = 0xB) -> None:
        """End the connection now: GOAWAY (default ENHANCE_YOUR_CALM: refused
        by policy), cancel every stream, stop reading."""
        self.h2.goaway(error_code)
        self._wake_writer()
        for stream in self.streams.values():
            stream.cancel()
        self._read_scope.cancel()

    def start_drain(self) -> None:
        """Shutdown: GOAWAY now, finish the open streams, then close."""
        if not self._draining:
            self._draining = True
            self.h2.goaway()
            if not self.streams:
                self._read_scope.cancel()
            self._wake_writer()

    async def _read_loop(self, data: bytes) -> None:
        h2 = self.h2
        timeouts = self.ctx.config.timeouts
        while True:
            if data:
                for event in h2.receive_data(data, trio.current_time()):
                    if not self._dispatch(event):
                        return
            try:
                await self.flush()  # one write for everything this read produced
            except OSError:
                return  # the writer failed: the client is gone
            if self._draining and not self.streams:
                return
            if self.streams:
                try:
                    data = await self.transport.recv()
                except OSError:
                    return
            else:
                with trio.move_on_after(timeouts.keep_alive) as scope:
                    try:
                        data = await self.transport.recv()
                    except OSError:
                        return
                if scope.cancelled_caught:
                    h2.goaway()
                    return
            if not data:
                return

    def _dispatch(self, event: object) -> bool:
        cls = type(event)
        if cls is Request:
            self._start_stream(event)  # type: ignore[arg-type]
        elif cls is Body:
            stream = self.streams.get(event.stream_id)  # type: ignore[attr-defined]
            if stream is None:
                self.h2.consumed(event.stream_id, event.flow_length)  # type: ignore[attr-defined]
            else:
                stream.chunks.append((event.data, event.flow_length))  # type: ignore[attr-defined]
                stream.wake()
        elif cls is EndBody:
            stream = self.streams.get(event.stream_id)  # type: ignore[attr-defined]
            if stream is not None:
                stream.ended = True
                stream.trailers = event.trailers  # type: ignore[attr-defined]
                stream.wake()
        elif cls is WindowOpened:
            window, self._window = self._window, None
            if window is not None:
                window.set()
        elif cls is StreamReset:
            stream = self.streams.get(event.stream_id)  # type: ignore[attr-defined]
            if stream is not None:
                stream.cancel()
                stream.wake()
        elif cls is ConnectionEnded:
            if event.error_code == _ENHANCE_YOUR_CALM:  # type: ignore[attr-defined]
                # a limit of H2Server: once per connection, for the operator
                reason = event.reason  # type: ignore[attr-defined]
                log.warning(
                    "edgeward: HTTP/2 client %s cut off: %s", self.ctx.info.client_ip, reason
                )
            for stream in self.streams.values():
                stream.cancel()
            return False
        return True

    def _start_stream(self, request: Request) -> None:
        stream = H2Stream(self, request.stream_id)
        self.streams[request.stream_id] = stream
        head = RequestHead(
            request.method,
            request.target,
            request.authority,
            request.scheme,
            request.headers,
            b"2",
        )
        stream.ended = request.end_stream
        job = (stream, head, not request.end_stream)
        if self._idle_workers:
            reschedule(self._idle_workers.pop(), outcome.Value(job))
        else:
            assert self._nursery is not None
            self._nursery.start_soon(self._worker, job)

    async def _worker(self, job: _Job) -> None:
        """Run streams one after the other, parking in between."""
        watchdog = self.ctx.services.watchdog
        timer = watchdog.add()  # the streams' in turn, disarmed between them
        try:
            while True:
                with trio.CancelScope() as scope:
                    while True:
                        await self._run_stream(scope, timer, *job)
                        if scope.cancel_called:
                            break  # it aborted a reset stream: renew before the next one
                        next_job = await self._next_job()
                        if next_job is None:
                            return
                        job = next_job
                next_job = await self._next_job()
                if next_job is None:
                    return
                job = next_job
        finally:
            watchdog.remove(timer)

    async def _next_job(self) -> _Job | None:
        """Park until the reader hands over a stream; None (end the worker)
        when enough workers are parked already."""
        if len(self._idle_workers) >= _MAX_IDLE_WORKERS:
            return None
        task = current_task()
        self._idle_workers.append(task)

        def abort(_: object) -> Abort:
            self._idle_workers.remove(task)  # the connection is ending
            return Abort.SUCCEEDED

        job: _Job = await wait_task_rescheduled(abort)
        return job

    async def _run_stream(
        self,
        scope: trio.CancelScope,
        timer: Timer,
        stream: H2Stream,
        head: RequestHead,
        has_body: bool,
    ) -> None:
        stream.scope = scope  # `stream.cancel()` cancels it from here on
        stream.timer = timer
        try:
            if stream.reset:
                return  # reset before a worker got to it
            if len(head.headers) > self.ctx.config.limits.max_header_count:
                stream.start_response(
                    431, [(b"edgeward-error", errors.HEADERS_TOO_LARGE.code.encode())]
                )
                stream.end_response([])
                return
            ctx = self.ctx.current()  # after a reload or an API change: the new rules
            if ctx is None:  # its listener is gone: this stream is refused, retried elsewhere
                self.h2.reset(stream.stream_id, 7)  # REFUSED_STREAM
                self.start_drain()
                return
            self.ctx = ctx
            await ProxyExchange(ctx, stream, head, has_body).run()
            if not stream.ended and not stream.reset:
                self.h2.reset(stream.stream_id, 0)  # response done, body unread: NO_ERROR
        except (ClientBodyError, OSError):
            pass
        except Exception:
            log.exception("edgeward: HTTP/2 stream %d failed", stream.stream_id)
            self.h2.reset(stream.stream_id, 2)  # INTERNAL_ERROR
        finally:
            stream.scope = None
            self.streams.pop(stream.stream_id, None)
            if stream._pending_ack or stream.chunks:
                stream.release_window()
            timer.disarm()
            self._wake_writer()  # a reset queued above, or frames nobody flushed
            if self._stream_done is not None:
                self._stream_done.set()
            if self._draining and not self.streams:
                self._read_scope.cancel()  # the last stream is done: close

    async def flush(self) -> None:
        """Hand what h2 has queued to the writer. Waits only while more than
        `_HIGH_WATER` bytes are waiting for the socket, which bounds the
        memory a slow reader can make us hold."""
        if self._broken:
            raise ConnectionResetError("client connection failed")
        data = self.h2.data_to_send()
        if data:
            self._out += data
            self._wake_writer()
        while len(self._out) + self._in_flight > _HIGH_WATER:
            written = self._written
            if written is None:
                written = self._written = trio.Event()
            await written.wait()
            if self._broken:
                raise ConnectionResetError("client connection failed")

    async def _write_loop(self) -> None:
        """The only writer: sends everything queued, one `send` per round."""
        h2 = self.h2
        send = self.transport.send
        try:
            while True:
                data = self._out
                more = h2.data_to_send()
                if more:
                    data += more
                if not data:
                    h2.all_sent()  # no control frame is waiting for the socket
                    if self._closing:
                        return
                    await self._park_writer()
                    continue
                self._out = bytearray()
                self._in_flight = len(data)
                await send(data)
                self._in_flight = 0
                written, self._written = self._written, None
                if written is not None:
                    written.set()
        except OSError:
            self._broken = True
            if self._written is not None:
                self._written.set()
            if not self._closing:
                self.close(0)  # nothing more can be sent: stop reading, cancel the streams

    async def _park_writer(self) -> None:
        """Until `_wake_writer`: a task hand-off, no event per round."""
        self._writer = current_task()

        def abort(_: object) -> Abort:
            self._writer = None  # the connection is ending
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)

    async def wait_window(self) -> bool:
        """Until the client grants send window; False when it has not for
        `client_send` seconds (it stopped reading, or never will)."""
        window = self._window
        if window is None:
            window = self._window = trio.Event()
        with trio.move_on_after(self.ctx.config.timeouts.client_send):
            await window.wait()
            return True
        return False


_NO_TIMER = Timer()
_Job = tuple["H2Stream", RequestHead, bool]
"""A stream for a worker: the stream, its request head, whether a body follows."""


class H2Stream:
    """One request stream: the `Downstream` of its exchange."""

    __slots__ = (
        "_body_bytes",
        "_ending",
        "_head",
        "_held",
        "_pending_ack",
        "_waiter",
        "chunks",
        "conn",
        "ended",
        "reset",
        "response_started",
        "scope",
        "stream_id",
        "timer",
        "trailers",
    )

    def __init__(self, conn: Http2Connection, stream_id: int) -> None:
        self.conn = conn
        self.timer = _NO_TIMER  # its worker's, while it runs
        self.stream_id = stream_id
        self.chunks: collections.deque[tuple[bytes, int]] = collections.deque()
        self.ended = False
        self.reset = False
        self.trailers: list[Header] = []
        self.response_started = False
        self.scope: trio.CancelScope | None = None  # its worker's, while it runs
        self._waiter: Task | None = None  # its worker, parked for body or end
        self._pending_ack = 0
        self._body_bytes = 0
        self._held = b""  # the last piece of response body, sent with END_STREAM
        self._ending: list[Header] | None = None
        self._head: tuple[int, list[Header]] | None = None  # the response head, until more comes

    def wake(self) -> None:
        """The reader queued something for the stream (body, end, reset)."""
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            reschedule(waiter)

    def cancel(self) -> None:
        """Abort the exchange (the client reset the stream, or the
        connection is ending). A stream no worker has taken yet is skipped."""
        self.reset = True
        if self.scope is not None:
            self.scope.cancel()

    def release_window(self) -> None:
        """The stream is over: whatever the client sent on it that was not
        acknowledged (a chunk not passed on, a reset stream's data) goes back
        to the connection window, or the connection would slowly starve."""
        flow = self._pending_ack + sum(flow for _, flow in self.chunks)
        self._pending_ack = 0
        self.chunks.clear()
        self.conn.h2.consumed(self.stream_id, flow)

    @property
    def request_trailers(self) -> list[Header]:
        return self.trailers

    async def receive_body(self) -> bytes:
        conn = self.conn
        if self._pending_ack:
            # the previous chunk has gone upstream: let the client send more
            conn.h2.consumed(self.stream_id, self._pending_ack)
            self._pending_ack = 0
            await conn.flush()
        timeout = conn.ctx.config.timeouts.body_read
        limit = conn.ctx.config.limits.max_body_bytes
        chunks = self.chunks
        while True:
            if chunks:
                # everything that arrived, up to one socket read's worth, in one
                # piece: one upstream write for several DATA frames
                parts = []
                size = flow = 0
                while chunks and size < _BODY_PIECE:
                    data, n = chunks.popleft()
                    flow += n
                    if data:
                        parts.append(data)
                        size += len(data)
                self._pending_ack += flow
                self._body_bytes += size
                if limit and self._body_bytes > limit:
                    raise ClientBodyError(errors.BODY_TOO_LARGE)
                if parts:
                    return parts[0] if len(parts) == 1 else b"".join(parts)
                continue
            if self.reset:
                raise ClientBodyError(None)
            if self.ended:
                return b""
            with trio.move_on_after(timeout) as scope:
                await self._park()
            if scope.cancelled_caught:
                raise ClientBodyError(errors.REQUEST_TIMEOUT)

    async def _park(self) -> None:
        """Until `wake` (a task hand-off: most streams never wait, so no
        event is made for each)."""
        self._waiter = current_task()

        def abort(_: object) -> Abort:
            self._waiter = None
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort)

    def start_response(self, status: int, headers: list[Header]) -> None:
        """The head waits for what follows: a response that ends right
        after it (no body, no trailers: a trailers-only gRPC answer) leaves
        as one HEADERS frame with END_STREAM."""
        if self.reset:  # between the reset and the worker's next checkpoint
            raise ClientBodyError(None)
        self.response_started = True
        self._head = (status, headers)

    def _send_head(self) -> None:
        head, self._head = self._head, None
        if head is not None:
            # connection-specific fields are dropped by the HPACK encoder (cached)
            self.conn.h2.send_headers(self.stream_id, head[0], head[1])

    async def send_data(self, data: bytes) -> None:
        if self._held:
            held, self._held = self._held, b""
            await self._send(held)
        await self._send(data, hold_last=True)

    async def _send(self, data: bytes, hold_last: bool = False) -> None:
        """DATA frames as the client's windows allow, after the head. With
        `hold_last`, the last piece is kept back (with the head, if it is
        still here): the next `end_response` sends all three in one call,
        the piece in one frame with END_STREAM (one frame less per
        response). It goes out at this stream's next `send_data`, `flush`
        or `end_response`, and the exchange awaits nothing else in between,
        so no other task can shrink the window it was checked against."""
        conn = self.conn
        h2 = conn.h2
        stream_id = self.stream_id
        pos, size = 0, len(data)
        while pos < size:
            window = h2.send_window(stream_id)
            if window < 0:
                raise ClientBodyError(None)  # the stream is gone
            if hold_last and size - pos <= window:
                self._held = data[pos:] if pos else data
                return
            if self._head is not None:
                self._send_head()
            if window == 0:
                await conn.flush()
                if not await conn.wait_window():
                    raise ClientBodyError(None)  # the exchange resets the stream
                continue
            h2.send_data(stream_id, data[pos : pos + window])
            pos += window
            await conn.flush()

    def end_response(self, trailers: list[Header]) -> None:
        """Whatever is left (the head, the held piece), the trailers and
        END_STREAM, in one call into h2: a small response is one call."""
        if self.reset:
            raise ClientBodyError(None)
        h2 = self.conn.h2
        head, self._head = self._head, None
        held, self._held = self._held, b""
        if not h2.finish_response(self.stream_id, head, held, trailers):
            # the held piece no longer fits the window (see `_send`): `flush` finishes
            if head is not None:
                h2.send_headers(self.stream_id, head[0], head[1])
            self._held, self._ending = held, trailers

    async def flush(self) -> None:
        if self._head is not None:
            self._send_head()
        if self._held:
            held, self._held = self._held, b""
            await self._send(held)
            if self._ending is not None:
                self.conn.h2.end_stream(self.stream_id, self._ending)
                self._ending = None
        await self.conn.flush()

    def abort(self) -> None:
        self.conn.h2.reset(self.stream_id)
        self.reset = True
        self._held = b""
        self._head = None

    def close_connection(self) -> None:
        self.abort()
        self.conn.close()

    async def relay_upgraded(
        self, upstream: Transport, upstream_leftover: bytes, meter: object
    ) -> None:
        raise ClientBodyError(None)  # HTTP/2 requests cannot ask for Upgrade
