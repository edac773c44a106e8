"""The trio driver of a tunnel session: it moves bytes between a connection
(a TLS stream) and a sans-IO `ServerSession` or `ClientSession`, runs their
timers, and gives each Proxy stream a `TunnelStream` with trio's stream
semantics (`receive_some`, `send_all`, `send_eof`, `aclose`).

Why here and not in `edgeward.proxy`: both the edge (the server role) and
the agent (the client role) drive a session, and the agent is not a proxy.
This is the package's only trio module; it depends on nothing above it.
The connection is anything with `receive_some`/`send_all`/`aclose` (a
`trio.SSLStream`, or an adapter around the proxy's transport).

One nursery per session holds three tasks: the reader (bytes in → events
→ streams), the writer (the only task that writes, so a cancelled stream
task can never cut a frame in half) and the timer (heartbeats). Stream
tasks only change the sans-IO state and wake the writer. Backpressure:
a stream's `send_all` waits for the peer's window (WNDINC), and for the
writer when more than `OUTBOUND_HIGH_WATER` bytes are queued; the peer is
held back by crediting its data only once `receive_some` hands it out.

The session ends when the connection does, when the peer breaks the
protocol or sends GOAWAY (the ngrok SDK reconnects on GOAWAY; so does our
agent), on a heartbeat timeout, or on `aclose()`. Its streams then fail
with `trio.BrokenResourceError`.
"""

from __future__ import annotations

import logging
import math
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

import trio
from trio.lowlevel import ParkingLot, checkpoint, checkpoint_if_cancelled

from edgeward.tunnel.client import (
    AuthAnswered,
    BindAnswered,
    ClientSession,
    CommandReceived,
    HeartbeatAnswered,
    ProxyOpened,
    TunnelStopped,
    UnbindAnswered,
)
from edgeward.tunnel.client import HeartbeatTimedOut as ClientHeartbeatTimedOut
from edgeward.tunnel.errors import (
    RpcError,
    SessionClosedError,
    StreamResetError,
    TunnelError,
)
from edgeward.tunnel.events import (
    DataReceived,
    GoAwayReceived,
    SessionFailed,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from edgeward.tunnel.frames import ErrorCode
from edgeward.tunnel.messages import (
    Auth,
    AuthResp,
    Bind,
    BindResp,
    ProxyHeader,
    StopTunnel,
    StreamType,
)
from edgeward.tunnel.mux import TYPE_SIZE
from edgeward.tunnel.protocol import ProtocolSession
from edgeward.tunnel.server import (
    AuthRequested,
    BindRequested,
    CommandAnswered,
    EndpointReady,
    ProxyDropped,
    ServerSession,
    Unbound,
)
from edgeward.tunnel.server import HeartbeatTimedOut as ServerHeartbeatTimedOut

log = logging.getLogger("edgeward.tunnel")
HANDLER_FAILED = "the edge failed to answer this request (see its log)"
RECEIVE_SIZE = 256 * 1024
OUTBOUND_HIGH_WATER = 1024 * 1024
_FAIR_EVERY = 16
_CONNECTION_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError, ssl.SSLError)


class Connection(Protocol):
    """What the driver needs from the connection under the session."""

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray: ...

    async def send_all(self, data: bytes | bytearray | memoryview) -> None: ...

    async def aclose(self) -> None: ...


class TunnelStream(trio.abc.HalfCloseableStream):
    """One data stream of a session. `dropped` is set when the agent ended
    it without reading past its header (see `server.ProxyDropped`)."""

    def __init__(self, driver: _Driver, stream_id: int) -> None:
        self._driver = driver
        self.stream_id = stream_id
        self._chunks: deque[bytes] = deque()
        self._eof = False  # the peer sent FIN
        self._error: TunnelError | None = None  # reset, or the session ended
        self._closed = False  # aclose() was called
        self._readable = ParkingLot()
        self._writable = ParkingLot()
        self.dropped = False

    # --- receiving --------------------------------------------------------------------

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await self._driver.operation()
        if self._closed:
            raise trio.ClosedResourceError("the stream was closed")
        while not self._chunks and not self._eof and self._error is None:
            await self._readable.park()
            if self._closed:  # closed by another task while this one waited
                raise trio.ClosedResourceError("the stream was closed")
        if self._chunks:
            data = self._chunks.popleft()
            if max_bytes is not None and len(data) > max_bytes:
                self._chunks.appendleft(data[max_bytes:])
                data = data[:max_bytes]
            self._driver.consumed(self.stream_id, len(data))
            return data
        if self._eof:
            return b""
        raise trio.BrokenResourceError(str(self._error)) from self._error

    # --- sending ----------------------------------------------------------------------

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        driver = self._driver
        proto = driver.proto
        view = memoryview(data)
        await driver.operation()
        while True:
            self._check_writable()
            if not view:
                return
            window = proto.send_window(self.stream_id)
            if window == 0:
                await self._writable.park()
                continue
            chunk = view[:window]
            proto.send_data(self.stream_id, bytes(chunk))
            view = view[len(chunk) :]
            await driver.sent()

    async def wait_send_all_might_not_block(self) -> None:
        while not self._driver.proto.send_window(self.stream_id):
            self._check_writable()
            await self._writable.park()

    async def send_eof(self) -> None:
        await self._driver.operation()
        if self._closed:
            raise trio.ClosedResourceError("the stream was closed")
        self.end()

    def end(self) -> None:
        """FIN now (`send_eof` without the checkpoint, for synchronous callers)."""
        if self._error is None and self._driver.proto.is_writable(self.stream_id):
            self._driver.proto.end_stream(self.stream_id)
            self._driver.wake_writer()

    @property
    def at_eof(self) -> bool:
        """The peer sent FIN and everything before it was read."""
        return self._eof and not self._chunks

    @property
    def usable(self) -> bool:
        """Open both ways with nothing unread: what a pooled stream must be
        before it carries another exchange (bytes the peer sent while it
        was idle are never an answer to the next request)."""
        return (
            not self._closed
            and self._error is None
            and not self._eof
            and not self._chunks
            and self._driver.proto.is_writable(self.stream_id)
        )

    def reset(self, error_code: int = ErrorCode.STREAM_CANCELLED) -> None:
        """Abort the stream both ways (RST)."""
        if self._error is None:
            self._driver.proto.reset_stream(self.stream_id, error_code)
            self._driver.wake_writer()
            self._fail(StreamResetError(self.stream_id, error_code))
        self._driver.forget(self.stream_id)

    async def aclose(self) -> None:
        """FIN if not sent yet; data the peer still sends is refused with
        RST(STREAM_CLOSED), as muxado's Close does."""
        self.close()
        await self._driver.operation()

    def close(self) -> None:
        """`aclose` without the checkpoint, for synchronous callers."""
        if not self._closed:
            self._closed = True
            if self._error is None and self._driver.proto.is_writable(self.stream_id):
                self._driver.proto.end_stream(self.stream_id)
                self._driver.wake_writer()
            if self._eof or self._error is not None:
                self._driver.forget(self.stream_id)
            elif self._chunks:  # unread data: nobody will read it, or the rest
                self._chunks.clear()
                self._driver.proto.reset_stream(self.stream_id, ErrorCode.STREAM_CLOSED)
                self._driver.wake_writer()
                self._driver.forget(self.stream_id)
            self._readable.unpark_all()
            self._writable.unpark_all()

    def _check_writable(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the stream was closed")
        if self._error is not None:
            raise trio.BrokenResourceError(str(self._error)) from self._error
        if not self._driver.proto.is_writable(self.stream_id):
            raise trio.ClosedResourceError("send_eof() was called")

    # --- the driver's side ------------------------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        if self._closed:  # nobody will read it
            self._driver.proto.reset_stream(self.stream_id, ErrorCode.STREAM_CLOSED)
            self._driver.forget(self.stream_id)
            return
        self._chunks.append(data)
        self._readable.unpark_all()

    def _on_end(self) -> None:
        self._eof = True
        self._readable.unpark_all()
        if self._closed:
            self._driver.forget(self.stream_id)

    def _fail(self, error: TunnelError) -> None:
        if self._error is None:
            self._error = error
        self._readable.unpark_all()
        self._writable.unpark_all()


class _Driver:
    """What both roles share: the tasks, the streams, the writer's wake-ups."""

    def __init__(self, conn: Connection, proto: ProtocolSession) -> None:
        self.conn = conn
        self.proto = proto
        self.streams: dict[int, TunnelStream] = {}
        self._wake = trio.Event()
        self._drained = ParkingLot()
        self._timer_scope: trio.CancelScope | None = None
        self._nursery: trio.Nursery | None = None
        self._closing = False  # flush, then close the connection
        self._ready_ops = 0
        self.ended = trio.Event()
        self.end_reason: TunnelError | None = None

    # --- running --------------------------------------------------------------------------

    async def _run(self, started: Callable[[], object]) -> None:
        """The session's nursery; `started()` once its tasks run."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._reader)
                nursery.start_soon(self._writer)
                nursery.start_soon(self._timer)
                self._started()
                started()
        finally:
            self._end(SessionClosedError(ErrorCode.SESSION_CLOSED, "the session ended"))
            with trio.CancelScope() as forcefully:  # no TLS close_notify wait
                forcefully.cancel()
                await self.conn.aclose()

    def _started(self) -> None:
        """Role hook: the tasks run (the client opens its heartbeat here)."""

    async def _reader(self) -> None:
        try:
            while True:
                data = await self.conn.receive_some(RECEIVE_SIZE)
                if not data:
                    break
                self._dispatch(self.proto.receive_data(bytes(data), trio.current_time()))
                self.wake_writer()
        except _CONNECTION_ERRORS:
            pass
        self._lose(SessionClosedError(ErrorCode.PEER_EOF, "the connection closed"))

    async def _writer(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake = trio.Event()
                data = self.proto.data_to_send()
                if data:
                    await self.conn.send_all(data)
                self._drained.unpark_all()
                if self._closing and not self.proto.outbound_size:
                    break
        except _CONNECTION_ERRORS:
            pass
        self._lose(SessionClosedError(ErrorCode.SESSION_CLOSED, "the session is closed"))

    async def _timer(self) -> None:
        while True:
            deadline = self.proto.next_deadline()
            with trio.CancelScope(deadline=math.inf if deadline is None else deadline) as scope:
                self._timer_scope = scope
                await trio.sleep_forever()
            self._timer_scope = None
            self._dispatch(self.proto.tick(trio.current_time()))
            self.wake_writer()

    def _reschedule(self) -> None:
        scope = self._timer_scope
        deadline = self.proto.next_deadline()
        if scope is not None and deadline is not None and deadline < scope.deadline:
            scope.deadline = deadline

    def _on_role_event(self, event: object) -> None:
        """Role hook: an event of the server or client session."""
        raise NotImplementedError

    # --- events ---------------------------------------------------------------------------

    def _dispatch(self, events: Sequence[object]) -> None:
        for event in events:
            if isinstance(event, DataReceived):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream._on_data(event.data)
            elif isinstance(event, WindowUpdated):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream._writable.unpark_all()
            elif isinstance(event, StreamEnded):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream._on_end()
            elif isinstance(event, StreamReset):
                stream = self.streams.pop(event.stream_id, None)
                if stream is not None:
                    stream._fail(StreamResetError(event.stream_id, event.error_code))
            elif isinstance(event, SessionFailed):
                self._close_after_flush(SessionClosedError(event.error_code, event.message))
            elif isinstance(event, GoAwayReceived):
                message = event.message.decode(errors="replace") or "the peer went away"
                self._close_after_flush(SessionClosedError(ErrorCode.REMOTE_GONE_AWAY, message))
            else:
                self._on_role_event(event)
        self._reschedule()

    # --- for streams ----------------------------------------------------------------------

    async def operation(self) -> None:
        """Where a stream operation that need not wait meets the scheduler:
        cancellation is checked every time, but the task yields only every
        `_FAIR_EVERY` operations (as `proxy.transport` does: a reschedule per
        operation was the largest cost of a request through the drivers)."""
        self._ready_ops += 1
        if self._ready_ops >= _FAIR_EVERY:
            self._ready_ops = 0
            await checkpoint()
        else:
            await checkpoint_if_cancelled()

    def consumed(self, stream_id: int, size: int) -> None:
        self.proto.acknowledge(stream_id, size)
        if self.proto.outbound_size:
            self.wake_writer()

    async def sent(self) -> None:
        """After a stream queued data: wake the writer; wait for it when too
        much is queued."""
        self.wake_writer()
        while self.proto.outbound_size > OUTBOUND_HIGH_WATER and not self.ended.is_set():
            await self._drained.park()

    def wake_writer(self) -> None:
        """The writer runs when there is something to write (or to close)."""
        if self.proto.outbound_size or self._closing:
            self._wake.set()

    def forget(self, stream_id: int) -> None:
        self.streams.pop(stream_id, None)

    def _add_stream(self, stream_id: int) -> TunnelStream:
        stream = TunnelStream(self, stream_id)
        self.streams[stream_id] = stream
        return stream

    # --- ending ---------------------------------------------------------------------------

    def _close_after_flush(self, reason: TunnelError) -> None:
        if self.end_reason is None:
            self.end_reason = reason
        self._closing = True
        self.wake_writer()

    def _lose(self, reason: TunnelError) -> None:
        """The connection is unusable: end everything now."""
        self._dispatch(self.proto.connection_lost())
        self._end(reason)

    def _end(self, reason: TunnelError) -> None:
        if self.end_reason is None:
            self.end_reason = reason
        for stream in list(self.streams.values()):
            stream._fail(self.end_reason)
        self.streams.clear()
        self._drained.unpark_all()
        self.ended.set()
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()

    async def aclose(self, error_code: int = ErrorCode.NONE, message: str = "") -> None:
        """GOAWAY, flush, close the connection."""
        if not self.ended.is_set():
            self.proto.go_away(error_code, message)
            self._close_after_flush(SessionClosedError(error_code, message or "closed"))
            with trio.move_on_after(5):
                await self.ended.wait()
            self._end(SessionClosedError(error_code, message or "closed"))
        await checkpoint()


# --- the edge's side -----------------------------------------------------------------------


class AgentHandler(Protocol):
    """The edge's decisions for one agent session. Raise `RpcError` to
    refuse; each call runs in its own task of the session's nursery. Any
    other exception is logged and the request is answered with an error:
    the session goes on (a bug in one answer never ends the edge)."""

    async def authenticate(self, tunnel: ServerTunnel, auth: Auth) -> AuthResp: ...

    async def bind(self, tunnel: ServerTunnel, bind: Bind) -> BindResp: ...

    async def unbound(self, tunnel: ServerTunnel, endpoint_id: str) -> None: ...


class _Pending:
    __slots__ = ("done", "result")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.result: object = None


class ServerTunnel(_Driver):
    proto: ServerSession

    def __init__(self, conn: Connection, handler: AgentHandler, session: ServerSession) -> None:
        super().__init__(conn, session)
        self.handler = handler
        self._ready = ParkingLot()
        self._commands: dict[int, _Pending] = {}
        self.heartbeat_timed_out = False

    async def open_proxy(
        self, header: ProxyHeader, data: bytes = b"", *, wait: bool = True
    ) -> TunnelStream:
        """Open a Proxy stream; `data` goes with the header (what fits the
        first frame; the rest follows as `send_all` would send it). By
        default it first waits for the endpoint's `ready_time` (the SDK
        drops a stream that comes before it has read the BindResp);
        `wait=False` skips that, for a caller that retries `stream.dropped`
        streams itself."""
        while wait:
            if self.ended.is_set():
                raise trio.BrokenResourceError("the session ended") from self.end_reason
            when = self.proto.ready_time(header.id)
            if when is None:
                raise KeyError(f"no endpoint {header.id!r} on this session")
            if when <= trio.current_time():
                break
            with trio.move_on_at(when):
                await self._ready.park()
        if self.ended.is_set():
            raise trio.BrokenResourceError("the session ended") from self.end_reason
        room = self.proto.mux.window - TYPE_SIZE - len(header.encode())
        first, rest = (data, b"") if len(data) <= room else (data[:room], data[room:])
        try:
            stream = self._add_stream(self.proto.open_proxy(header, first))
        except SessionClosedError as exc:
            raise trio.BrokenResourceError(str(exc)) from exc
        self.wake_writer()
        if rest:
            await stream.send_all(rest)
        return stream

    def stop_tunnel(self, stop: StopTunnel) -> None:
        self.proto.stop_tunnel(stop)
        self._ready.unpark_all()
        self.wake_writer()

    async def command(self, stream_type: StreamType) -> str | None:
        """Send Restart, Stop or Update and wait for the answer: None when the
        agent will do it, else its error (e.g. no handler for it)."""
        if self.ended.is_set():
            raise trio.BrokenResourceError("the session ended") from self.end_reason
        pending = _Pending()
        self._commands[self.proto.send_command(stream_type)] = pending
        self.wake_writer()
        await pending.done.wait()
        if isinstance(pending.result, TunnelError):
            raise trio.BrokenResourceError(str(pending.result)) from pending.result
        assert pending.result is None or isinstance(pending.result, str)
        return pending.result

    def _end(self, reason: TunnelError) -> None:
        super()._end(reason)
        self._ready.unpark_all()
        for pending in self._commands.values():
            pending.result = self.end_reason
            pending.done.set()
        self._commands.clear()

    def _on_role_event(self, event: object) -> None:
        nursery = self._nursery
        assert nursery is not None
        if isinstance(event, AuthRequested):
            nursery.start_soon(self._answer_auth, event)
        elif isinstance(event, BindRequested):
            nursery.start_soon(self._answer_bind, event)
        elif isinstance(event, EndpointReady):
            self._ready.unpark_all()
        elif isinstance(event, Unbound):
            self._ready.unpark_all()
            nursery.start_soon(self._unbound, event.endpoint_id)
        elif isinstance(event, ProxyDropped):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.dropped = True
        elif isinstance(event, CommandAnswered):
            pending = self._commands.pop(event.stream_id, None)
            if pending is not None:
                pending.result = event.error
                pending.done.set()
        elif isinstance(event, ServerHeartbeatTimedOut):
            self.heartbeat_timed_out = True
            self._close_after_flush(SessionClosedError(ErrorCode.NONE, "heartbeat timed out"))

    async def _answer_auth(self, event: AuthRequested) -> None:
        result: AuthResp | RpcError
        try:
            result = await self.handler.authenticate(self, event.auth)
        except RpcError as exc:
            result = exc
        except Exception:  # a bug in the handler: this request fails, the session goes on
            log.exception("tunnel: the agent handler failed to answer an Auth")
            result = RpcError(HANDLER_FAILED)
        self._dispatch(self.proto.answer_auth(event.stream_id, result, trio.current_time()))
        self.wake_writer()

    async def _answer_bind(self, event: BindRequested) -> None:
        result: BindResp | RpcError
        try:
            result = await self.handler.bind(self, event.bind)
        except RpcError as exc:
            result = exc
        except Exception:
            log.exception("tunnel: the agent handler failed to answer a Bind")
            result = RpcError(HANDLER_FAILED)
        self.proto.answer_bind(event.stream_id, result, trio.current_time())
        self._ready.unpark_all()  # waiters re-read ready_time
        self.wake_writer()

    async def _unbound(self, endpoint_id: str) -> None:
        try:
            await self.handler.unbound(self, endpoint_id)
        except Exception:
            log.exception("tunnel: the agent handler failed on an Unbind")


async def serve_agent(
    conn: Connection,
    handler: AgentHandler,
    *,
    session: ServerSession | None = None,
    task_status: trio.TaskStatus[ServerTunnel] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run one agent session on `conn` until it ends; `task_status` gets the
    `ServerTunnel` (to open Proxy streams)."""
    tunnel = ServerTunnel(conn, handler, session or ServerSession())
    await tunnel._run(lambda: task_status.started(tunnel))


# --- the agent's side ----------------------------------------------------------------------


class ClientTunnel(_Driver):
    proto: ClientSession

    def __init__(self, conn: Connection, session: ClientSession) -> None:
        super().__init__(conn, session)
        self._pending: dict[int, _Pending] = {}
        self._incoming: deque[tuple[ProxyHeader, TunnelStream]] = deque()
        self._incoming_lot = ParkingLot()
        self.stopped: list[StopTunnel] = []  # StopTunnel requests received
        self.stop_requested = trio.Event()  # the edge sent Stop and we said we would
        self.heartbeat_latency: float | None = None
        self.heartbeat_timed_out = False

    def _started(self) -> None:
        self.proto.start(trio.current_time())
        self.wake_writer()

    async def authenticate(self, auth: Auth) -> AuthResp:
        result = await self._call(lambda: self.proto.authenticate(auth))
        assert isinstance(result, AuthResp)
        return result

    async def bind(self, bind: Bind) -> BindResp:
        result = await self._call(lambda: self.proto.bind(bind))
        assert isinstance(result, BindResp)
        return result

    async def unbind(self, endpoint_id: str) -> None:
        await self._call(lambda: self.proto.unbind(endpoint_id))

    async def _call(self, send: Callable[[], int]) -> object:
        if self.ended.is_set():
            raise trio.BrokenResourceError("the session ended") from self.end_reason
        pending = _Pending()
        self._pending[send()] = pending
        self.wake_writer()
        await pending.done.wait()  # the session's end settles it too
        if isinstance(pending.result, TunnelError):
            raise pending.result
        return pending.result

    async def accept(self) -> tuple[ProxyHeader, TunnelStream]:
        """The next Proxy stream the edge opened for one of our endpoints."""
        while not self._incoming:
            if self.ended.is_set():
                raise trio.BrokenResourceError("the session ended") from self.end_reason
            await self._incoming_lot.park()
        header, stream = self._incoming.popleft()
        await checkpoint()
        return header, stream

    def _end(self, reason: TunnelError) -> None:
        super()._end(reason)
        for pending in self._pending.values():
            pending.result = self.end_reason
            pending.done.set()
        self._pending.clear()
        self._incoming_lot.unpark_all()

    def _on_role_event(self, event: object) -> None:
        if isinstance(event, AuthAnswered | BindAnswered):
            self._settle(event.stream_id, event.result)
        elif isinstance(event, UnbindAnswered):
            self._settle(event.stream_id, event.error)
        elif isinstance(event, ProxyOpened):
            self._incoming.append((event.header, self._add_stream(event.stream_id)))
            self._incoming_lot.unpark()
        elif isinstance(event, TunnelStopped):
            self.stopped.append(event.stop)
        elif isinstance(event, CommandReceived):
            if event.performed and event.stream_type == StreamType.STOP:
                self.stop_requested.set()
        elif isinstance(event, HeartbeatAnswered):
            self.heartbeat_latency = event.latency
        elif isinstance(event, ClientHeartbeatTimedOut):
            self.heartbeat_timed_out = True
            self._close_after_flush(SessionClosedError(ErrorCode.NONE, "heartbeat timed out"))

    def _settle(self, stream_id: int, result: object) -> None:
        pending = self._pending.pop(stream_id, None)
        if pending is not None:
            pending.result = result
            pending.done.set()


@asynccontextmanager
async def open_agent_session(
    conn: Connection,
    *,
    session: ClientSession | None = None,
) -> AsyncIterator[ClientTunnel]:
    """A client session on `conn` (heartbeats start at once), closed with
    GOAWAY on exit."""
    tunnel = ClientTunnel(conn, session or ClientSession())

    async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await tunnel._run(task_status.started)

    async with trio.open_nursery() as nursery:
        await nursery.start(run)
        try:
            yield tunnel
        finally:
            with trio.CancelScope(shield=True):
                await tunnel.aclose()
