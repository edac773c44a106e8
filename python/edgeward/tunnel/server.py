"""`ServerSession`: the edge's side of one agent session, sans-IO.

On top of a server-role `mux.Session` it runs the control streams itself:
reads each RPC request as it completes (the client does not half-close),
answers heartbeats, refuses what the protocol does not allow (a Bind before
Auth, a second Auth, stream types a client may not open) with an RPC error
and FIN. The decisions stay with the caller: `AuthRequested` is answered
with `answer_auth`, `BindRequested` with `answer_bind`, both possibly later
(an authtoken lookup may take a thread). Unbind is answered here (`Unbound`
tells the caller).

Proxy streams are the data path. `open_proxy` writes the type and the
ProxyHeader; after that the caller works on `self.mux` directly
(`send_data`, `acknowledge`, ...) and receives the mux events of those
streams unchanged.

The SDK race (agent-protocol.md §3, Proxy stream): the SDK registers an
endpoint id only after it has decoded the BindResp, and silently drops a
Proxy stream for an id it does not know yet. The SDK closes the Bind stream
(FIN) right after reading the answer, so `EndpointReady` (that FIN) is the
earliest sign the agent knows the id; `ready_time()` says when Proxy streams
may be opened: at once after that FIN, else `ready_grace` seconds after the
BindResp went out (for a client that never closes its Bind stream; with
the SDK a 200 ms pause was enough in every observed run). A Proxy
stream the agent closes or resets without having consumed anything past its
header, and without writing anything, is reported as `ProxyDropped` before
its end: nothing reached the agent's upstream, so it is safe to retry on a
new stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgeward.tunnel.errors import MessageError, RpcError
from edgeward.tunnel.events import (
    DataReceived,
    GoAwayReceived,
    MuxEvent,
    SessionFailed,
    StreamEnded,
    StreamOpened,
    StreamReset,
    WindowUpdated,
)
from edgeward.tunnel.frames import ErrorCode
from edgeward.tunnel.heartbeat import HeartbeatMonitor
from edgeward.tunnel.messages import (
    UNBIND_RESP,
    Auth,
    AuthResp,
    Bind,
    BindResp,
    ProxyHeader,
    StopTunnel,
    StreamType,
    Unbind,
    decode_command_resp,
    encode_command,
    encode_error,
    ns_to_seconds,
)
from edgeward.tunnel.mux import TYPE_SIZE, Session
from edgeward.tunnel.protocol import ProtocolSession
from edgeward.tunnel.rpc import InboundRpc, ResponseReader

# --- events ---------------------------------------------------------------------------


@dataclass(slots=True)
class AuthRequested:
    """Answer with `answer_auth(stream_id, AuthResp | RpcError)`."""

    stream_id: int
    auth: Auth


@dataclass(slots=True)
class BindRequested:
    """Answer with `answer_bind(stream_id, BindResp | RpcError)`."""

    stream_id: int
    bind: Bind


@dataclass(slots=True)
class EndpointReady:
    """The agent has read the BindResp (it closed the Bind stream): Proxy
    streams for the endpoint will be taken."""

    endpoint_id: str


@dataclass(slots=True)
class Unbound:
    """The agent withdrew an endpoint (already answered)."""

    endpoint_id: str


@dataclass(slots=True)
class BadRequest:
    """A request that could not be decoded or is not allowed now; it was
    answered with an RPC error. For the caller's log."""

    stream_id: int
    stream_type: int
    error: MessageError | RpcError


@dataclass(slots=True)
class ProxyDropped:
    """The agent ended a Proxy stream without reading past its header (an id
    it did not know yet, or a refused stream): retry on a new stream."""

    stream_id: int


@dataclass(slots=True)
class CommandAnswered:
    """The answer to `send_command`: `error` None for success."""

    stream_id: int
    stream_type: int
    error: str | None


@dataclass(slots=True)
class HeartbeatTimedOut:
    """No heartbeat from the agent within its interval + tolerance."""


ServerEvent = (
    AuthRequested
    | BindRequested
    | EndpointReady
    | Unbound
    | BadRequest
    | ProxyDropped
    | CommandAnswered
    | HeartbeatTimedOut
    | DataReceived
    | StreamEnded
    | StreamReset
    | WindowUpdated
    | GoAwayReceived
    | SessionFailed
)

_RPC_TYPES = frozenset(
    {StreamType.AUTH, StreamType.BIND, StreamType.UNBIND, StreamType.BIND_LABELED}
    | {StreamType.SRV_INFO}
)
_COMMAND_TYPES = frozenset({StreamType.RESTART, StreamType.STOP, StreamType.UPDATE})
_RECEIVED = object()  # InboundRpc.request of a complete request not decoded yet
# Requests in flight on one session (the SDKs make one at a time); beyond it
# a request stream is reset with ENHANCE_YOUR_CALM. Request bytes are not
# credited back, so one request holds at most a window of memory.
MAX_PENDING_REQUESTS = 16


class _Proxy:
    __slots__ = ("acked", "answered", "prefix")

    def __init__(self, prefix: int) -> None:
        self.prefix = prefix  # type + header bytes: what the agent reads before the payload
        self.acked = 0  # window the agent has credited back
        self.answered = False  # the agent sent data

    @property
    def unread(self) -> bool:
        """The agent neither read past the header nor wrote anything."""
        return self.acked <= self.prefix and not self.answered


class ServerSession(ProtocolSession):
    """One agent connection, edge side."""

    def __init__(self, *, mux: Session | None = None, ready_grace: float = 0.5) -> None:
        super().__init__(mux or Session(client=False))
        self.ready_grace = ready_grace
        self.auth: Auth | None = None  # the accepted Auth
        self.endpoints: dict[str, Bind] = {}  # bound endpoints by id
        self._ready: set[str] = set()
        self._bound_at: dict[str, float] = {}  # endpoint -> when its BindResp went out
        self._rpcs: dict[int, InboundRpc] = {}
        self._bind_streams: dict[int, str] = {}  # answered Bind stream -> endpoint id
        self._proxies: dict[int, _Proxy] = {}
        self._heartbeats: set[int] = set()
        self._commands: dict[int, tuple[int, ResponseReader]] = {}
        self._auth_pending = False
        self._deferred: list[tuple[int, object]] = []  # requests held while Auth is pending
        self._monitor: HeartbeatMonitor | None = None
        self._timed_out = False
        self.last_heartbeat: float | None = None  # when the agent's last beat arrived

    # --- bytes in, time -----------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[ServerEvent]:
        out: list[ServerEvent] = []
        for event in self.mux.receive_data(data):
            self._on_event(event, now, out)
        return out

    def connection_lost(self) -> list[ServerEvent]:
        """The connection closed: the Proxy streams the caller holds are reset."""
        gone: list[ServerEvent] = [
            e for e in self.mux.connection_lost() if e.stream_id in self._proxies
        ]
        self._proxies.clear()
        return gone

    def tick(self, now: float) -> list[ServerEvent]:
        monitor = self._monitor
        if monitor is not None and not self._timed_out and monitor.timed_out(now):
            self._timed_out = True
            return [HeartbeatTimedOut()]
        return []

    def next_deadline(self) -> float | None:
        """When `tick` may next have something to say (None: nothing planned)."""
        if self._monitor is None or self._timed_out:
            return None
        return self._monitor.deadline()

    # --- the caller's decisions -------------------------------------------------------

    def answer_auth(
        self, stream_id: int, result: AuthResp | RpcError, now: float
    ) -> list[ServerEvent]:
        """Answer the Auth; returns the events of requests that arrived while
        it was pending (a client may send Bind before it has the AuthResp)."""
        self._auth_pending = False
        rpc = self._take_request(stream_id, StreamType.AUTH)
        if rpc is not None:
            assert isinstance(rpc.request, Auth)
            if isinstance(result, RpcError):
                self._answer(stream_id, rpc, encode_error(result))
            else:
                self.auth = rpc.request
                extra = rpc.request.extra
                if extra.heartbeat_interval > 0:
                    self._monitor = HeartbeatMonitor(
                        ns_to_seconds(extra.heartbeat_interval),
                        ns_to_seconds(max(extra.heartbeat_tolerance, 0)),
                        now,
                    )
                self._answer(stream_id, rpc, result.encode())
        out: list[ServerEvent] = []
        deferred, self._deferred = self._deferred, []
        for sid, value in deferred:
            waiting = self._rpcs.get(sid)
            if waiting is not None:
                self._on_request(sid, waiting, value, out)
        return out

    def answer_bind(self, stream_id: int, result: BindResp | RpcError, now: float) -> None:
        rpc = self._take_request(stream_id, StreamType.BIND)
        if rpc is None:
            return
        assert isinstance(rpc.request, Bind)
        if isinstance(result, RpcError):
            self._answer(stream_id, rpc, encode_error(result))
            return
        self.endpoints[result.id] = rpc.request
        self._bound_at[result.id] = now
        if rpc.ended:  # a client that half-closed first: nothing to wait for
            self._ready.add(result.id)
        else:
            self._bind_streams[stream_id] = result.id
        self._answer(stream_id, rpc, result.encode())

    def is_ready(self, endpoint_id: str) -> bool:
        """The agent has read the endpoint's BindResp (see the module doc)."""
        return endpoint_id in self._ready

    def ready_time(self, endpoint_id: str) -> float | None:
        """When Proxy streams for the endpoint may be opened (-inf: now);
        None when the endpoint is not bound on this session."""
        if endpoint_id in self._ready:
            return -math.inf
        bound_at = self._bound_at.get(endpoint_id)
        if bound_at is None or endpoint_id not in self.endpoints:
            return None
        return bound_at + self.ready_grace

    def open_proxy(self, header: ProxyHeader, data: bytes = b"") -> int:
        """Open a Proxy stream: type, header, then `data` (which must fit the
        initial window with them). Returns the stream id."""
        prefix = header.encode()
        stream_id = self.mux.open_stream(StreamType.PROXY, prefix + data if data else prefix)
        self._proxies[stream_id] = _Proxy(TYPE_SIZE + len(prefix))
        return stream_id

    def stop_tunnel(self, stop: StopTunnel) -> None:
        """Close one of the agent's endpoints (no answer; the SDK then sends
        Unbind, answered like any other)."""
        self._withdraw(stop.id)
        self.mux.open_stream(StreamType.STOP_TUNNEL, stop.encode(), fin=True)

    def send_command(self, stream_type: StreamType, version: str = "") -> int:
        """Restart, Stop or Update; the answer arrives as `CommandAnswered`."""
        if stream_type not in _COMMAND_TYPES:
            raise ValueError(f"{stream_type!r} is not a command")
        stream_id = self.mux.open_stream(stream_type, encode_command(stream_type, version))
        self._commands[stream_id] = (stream_type, ResponseReader("CommandResp"))
        return stream_id

    # --- events -----------------------------------------------------------------------

    def _on_event(self, event: MuxEvent, now: float, out: list[ServerEvent]) -> None:
        if isinstance(event, DataReceived):
            sid = event.stream_id
            proxy = self._proxies.get(sid)
            if proxy is not None:
                proxy.answered = True
                out.append(event)
            elif sid in self._rpcs:  # not credited: a request must fit the window
                self._on_request_data(sid, self._rpcs[sid], event.data, out)
            elif sid in self._heartbeats:
                self._echo(sid, event.data, now)
            elif sid in self._commands:
                self.mux.acknowledge(sid, len(event.data))
                self._on_command_data(sid, event.data)
        elif isinstance(event, WindowUpdated):
            proxy = self._proxies.get(event.stream_id)
            if proxy is not None:
                proxy.acked += event.increment
                out.append(event)
        elif isinstance(event, StreamOpened):
            self._on_opened(event)
        elif isinstance(event, StreamEnded):
            self._on_ended(event.stream_id, out)
        elif isinstance(event, StreamReset):
            proxy = self._proxies.pop(event.stream_id, None)
            if proxy is not None:
                if event.by_peer and proxy.unread:
                    out.append(ProxyDropped(event.stream_id))
                out.append(event)
            else:
                self._forget(event.stream_id)
        else:  # GoAwayReceived, SessionFailed
            out.append(event)

    def _on_opened(self, event: StreamOpened) -> None:
        sid, kind = event.stream_id, event.stream_type
        if kind in _RPC_TYPES:
            if len(self._rpcs) >= MAX_PENDING_REQUESTS:
                self.mux.reset_stream(sid, ErrorCode.ENHANCE_YOUR_CALM)
                return
            # the bytes are not credited: a request that fills the window is refused
            limit = self.mux.window - TYPE_SIZE - 1
            self._rpcs[sid] = InboundRpc(kind, StreamType(kind).name.title(), limit)
        elif kind == StreamType.HEARTBEAT:
            self._heartbeats.add(sid)
        else:  # Proxy and commands: only a server opens them; unknown types
            self.mux.reset_stream(sid, ErrorCode.STREAM_REFUSED)

    def _on_ended(self, sid: int, out: list[ServerEvent]) -> None:
        proxy = self._proxies.get(sid)
        if proxy is not None:
            if proxy.unread:
                out.append(ProxyDropped(sid))
            out.append(StreamEnded(sid))
            if not self.mux.is_open(sid):
                del self._proxies[sid]
            return
        rpc = self._rpcs.get(sid)
        if rpc is not None:
            rpc.ended = True
            if rpc.answered:
                del self._rpcs[sid]
                endpoint = self._bind_streams.pop(sid, None)
                if endpoint is not None and endpoint in self.endpoints:
                    self._ready.add(endpoint)
                    out.append(EndpointReady(endpoint))
            elif rpc.request is None:
                try:
                    rpc.reader.finish()
                except MessageError as exc:
                    self._reject(sid, rpc, exc, out)
        elif sid in self._heartbeats:
            self._heartbeats.discard(sid)
            self._end(sid)
        elif sid in self._commands:
            kind, reader = self._commands.pop(sid)
            try:
                error = decode_command_resp(reader.body())
            except MessageError as exc:
                error = str(exc)
            out.append(CommandAnswered(sid, kind, error))
            self._end(sid)

    # --- requests ---------------------------------------------------------------------

    def _on_request_data(
        self, sid: int, rpc: InboundRpc, data: bytes, out: list[ServerEvent]
    ) -> None:
        if rpc.answered or rpc.request is not None:
            return  # bytes after the object: ignored
        try:
            value = rpc.reader.feed(data)
        except MessageError as exc:
            self._reject(sid, rpc, exc, out)
            return
        if value is not None:
            rpc.request = _RECEIVED
            self._on_request(sid, rpc, value, out)

    def _on_request(self, sid: int, rpc: InboundRpc, value: object, out: list[ServerEvent]) -> None:
        """A complete request: decode it, answer it or hand it to the caller."""
        kind = rpc.stream_type
        try:
            if kind == StreamType.AUTH:
                if self.auth is not None or self._auth_pending:
                    raise RpcError("the session is already authenticated")
                rpc.request = auth = Auth.from_json(value)
                self._auth_pending = True
                out.append(AuthRequested(sid, auth))
            elif self._auth_pending:  # held until the Auth is answered
                self._deferred.append((sid, value))
            elif self.auth is None:
                raise RpcError("authenticate the session first")
            elif kind == StreamType.BIND:
                rpc.request = bind = Bind.from_json(value)
                out.append(BindRequested(sid, bind))
            elif kind == StreamType.UNBIND:
                endpoint = Unbind.from_json(value).id
                rpc.request = endpoint
                self._answer(sid, rpc, UNBIND_RESP)  # unknown ids too: unbinding is idempotent
                if endpoint in self.endpoints:
                    self._withdraw(endpoint)
                    out.append(Unbound(endpoint))
            else:
                raise RpcError(f"{StreamType(kind).name} requests are not supported")
        except (MessageError, RpcError) as exc:
            self._reject(sid, rpc, exc, out)

    def _reject(
        self, sid: int, rpc: InboundRpc, error: MessageError | RpcError, out: list[ServerEvent]
    ) -> None:
        rpc.request = error
        rpc.reader.done = True
        rpc_error = error if isinstance(error, RpcError) else RpcError(str(error))
        self._answer(sid, rpc, encode_error(rpc_error))
        out.append(BadRequest(sid, rpc.stream_type, error))

    def _take_request(self, stream_id: int, kind: StreamType) -> InboundRpc | None:
        """The request being answered; None if the client gave up on it (reset)."""
        rpc = self._rpcs.get(stream_id)
        if rpc is None or rpc.stream_type != kind or rpc.answered:
            return None
        return rpc

    def _answer(self, sid: int, rpc: InboundRpc, body: bytes) -> None:
        """Write the answer and FIN (the client reads to the end)."""
        rpc.answered = True
        if self.mux.is_writable(sid):
            self.mux.send_data(sid, body, fin=True)
        if rpc.ended:
            self._rpcs.pop(sid, None)

    # --- heartbeats, commands, bookkeeping ---------------------------------------------------

    def _echo(self, sid: int, data: bytes, now: float) -> None:
        self.mux.acknowledge(sid, len(data))
        self.last_heartbeat = now
        if self._monitor is not None:
            self._monitor.on_data(len(data), now)
        if self.mux.send_window(sid) >= len(data):
            self.mux.send_data(sid, data)
        else:  # the agent stopped reading its own echoes
            self.mux.reset_stream(sid, ErrorCode.FLOW_CONTROL)
            self._heartbeats.discard(sid)

    def _on_command_data(self, sid: int, data: bytes) -> None:
        try:
            self._commands[sid][1].feed(data)
        except MessageError:
            self.mux.reset_stream(sid, ErrorCode.FRAME_SIZE)
            del self._commands[sid]

    def _withdraw(self, endpoint: str) -> None:
        self.endpoints.pop(endpoint, None)
        self._ready.discard(endpoint)
        self._bound_at.pop(endpoint, None)

    def _stream_closed(self, stream_id: int) -> None:
        if not self.mux.is_open(stream_id) and self._proxies.pop(stream_id, None) is None:
            self._forget(stream_id)

    def _forget(self, sid: int) -> None:
        self._rpcs.pop(sid, None)
        self._bind_streams.pop(sid, None)
        self._heartbeats.discard(sid)
        self._commands.pop(sid, None)
