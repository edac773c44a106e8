"""`ClientSession`: the agent's side of a session, sans-IO.

On top of a client-role `mux.Session`: `start()` opens the heartbeat stream
(first beat at once, as the SDK does), `authenticate`, `bind` and `unbind`
write one JSON request each and do not half-close; the answer is read to
the server's FIN, then our side is closed too (the SDK's order). Proxy
streams: the header is read here, a stream naming an endpoint this session
did not bind is refused (RST STREAM_REFUSED), the others are announced as
`ProxyOpened` and then belong to the caller (`send_data`, `acknowledge`,
...). Commands from the server are answered "not supported",
StopTunnel withdraws the endpoint and is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeward.tunnel.errors import MessageError, StreamResetError, TunnelError
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
from edgeward.tunnel.heartbeat import HeartbeatRequester
from edgeward.tunnel.messages import (
    NOT_SUPPORTED,
    Auth,
    AuthResp,
    Bind,
    BindResp,
    ProxyHeader,
    ProxyHeaderReader,
    StopTunnel,
    StreamType,
    Unbind,
    decode_unbind_resp,
    encode_command_resp,
    seconds_to_ns,
)
from edgeward.tunnel.mux import TYPE_SIZE, Session
from edgeward.tunnel.protocol import ProtocolSession
from edgeward.tunnel.rpc import InboundRpc, ResponseReader

# --- events ---------------------------------------------------------------------------


@dataclass(slots=True)
class AuthAnswered:
    stream_id: int
    result: AuthResp | TunnelError  # RpcError: refused; MessageError: a bad answer


@dataclass(slots=True)
class BindAnswered:
    stream_id: int
    result: BindResp | TunnelError


@dataclass(slots=True)
class UnbindAnswered:
    stream_id: int
    endpoint_id: str
    error: TunnelError | None


@dataclass(slots=True)
class ProxyOpened:
    """A Proxy stream for one of our endpoints; its payload follows as
    `DataReceived`."""

    stream_id: int
    header: ProxyHeader


@dataclass(slots=True)
class TunnelStopped:
    """The server closed an endpoint (it is no longer in `endpoints`)."""

    stop: StopTunnel


@dataclass(slots=True)
class CommandReceived:
    """The server sent Restart, Stop or Update. One the session was told it
    performs (`ClientSession(performs=...)`) is answered as done, and the
    agent must then do it; any other is answered "not supported"."""

    stream_type: int
    performed: bool = False


@dataclass(slots=True)
class HeartbeatAnswered:
    latency: float  # seconds


@dataclass(slots=True)
class HeartbeatTimedOut:
    """No echo within interval + tolerance: the connection is likely dead."""


ClientEvent = (
    AuthAnswered
    | BindAnswered
    | UnbindAnswered
    | ProxyOpened
    | TunnelStopped
    | CommandReceived
    | HeartbeatAnswered
    | HeartbeatTimedOut
    | DataReceived
    | StreamEnded
    | StreamReset
    | WindowUpdated
    | GoAwayReceived
    | SessionFailed
)

_COMMAND_TYPES = frozenset({StreamType.RESTART, StreamType.STOP, StreamType.UPDATE})


class _Call:
    """An RPC we made: the answer is read to FIN."""

    __slots__ = ("kind", "reader", "subject")

    def __init__(self, kind: StreamType, subject: str = "") -> None:
        self.kind = kind
        self.subject = subject  # Unbind: the endpoint id
        self.reader = ResponseReader(f"{kind.name.title()}Resp")


class ClientSession(ProtocolSession):
    """One agent connection, agent side."""

    def __init__(
        self,
        *,
        heartbeat_interval: float = 10.0,
        heartbeat_tolerance: float = 15.0,
        mux: Session | None = None,
        performs: frozenset[StreamType] = frozenset(),
    ) -> None:
        super().__init__(mux or Session(client=True))
        self.performs = performs & _COMMAND_TYPES  # commands this agent carries out
        self.heartbeat = HeartbeatRequester(heartbeat_interval, heartbeat_tolerance)
        self.endpoints: dict[str, BindResp] = {}  # bound endpoints by id
        self.session_id = ""  # AuthResp.ClientId, sent back on reconnect
        self._calls: dict[int, _Call] = {}
        self._headers: dict[int, ProxyHeaderReader] = {}  # Proxy streams before their header
        self._proxies: set[int] = set()
        self._commands: dict[int, InboundRpc] = {}
        self._echoes: set[int] = set()  # heartbeat streams the server opened
        self._beat_stream: int | None = None
        self._timed_out = False

    # --- starting, requests ------------------------------------------------------------

    def start(self, now: float) -> None:
        """Open the heartbeat stream; the first beat goes out at once."""
        self.heartbeat.start(now)
        beat = self.heartbeat.poll(now) or b""
        self._beat_stream = self.mux.open_stream(StreamType.HEARTBEAT, beat)

    def authenticate(self, auth: Auth) -> int:
        """Send Auth; the heartbeat settings go with it, in nanoseconds."""
        auth.extra.heartbeat_interval = seconds_to_ns(self.heartbeat.interval)
        auth.extra.heartbeat_tolerance = seconds_to_ns(self.heartbeat.tolerance)
        return self._call(StreamType.AUTH, auth.encode())

    def bind(self, bind: Bind) -> int:
        return self._call(StreamType.BIND, bind.encode())

    def unbind(self, endpoint_id: str) -> int:
        return self._call(StreamType.UNBIND, Unbind(endpoint_id).encode(), endpoint_id)

    def _call(self, kind: StreamType, body: bytes, subject: str = "") -> int:
        if TYPE_SIZE + len(body) >= self.mux.window:  # the server does not credit requests
            raise MessageError(kind.name.title(), "request larger than the stream window")
        stream_id = self.mux.open_stream(kind, body)
        self._calls[stream_id] = _Call(kind, subject)
        return stream_id

    # --- bytes in, time -----------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[ClientEvent]:
        out: list[ClientEvent] = []
        for event in self.mux.receive_data(data):
            self._on_event(event, now, out)
        return out

    def connection_lost(self) -> list[ClientEvent]:
        gone: list[ClientEvent] = [
            e for e in self.mux.connection_lost() if e.stream_id in self._proxies
        ]
        self._proxies.clear()
        return gone

    def tick(self, now: float) -> list[ClientEvent]:
        if self._timed_out or self._beat_stream is None or self.mux.closed:
            return []
        if self.heartbeat.timed_out(now):
            self._timed_out = True
            return [HeartbeatTimedOut()]
        beat = self.heartbeat.poll(now)
        if beat is not None and self.mux.send_window(self._beat_stream) >= len(beat):
            self.mux.send_data(self._beat_stream, beat)
        return []

    def next_deadline(self) -> float | None:
        if self._timed_out or self._beat_stream is None:
            return None
        return self.heartbeat.deadline()

    # --- events -----------------------------------------------------------------------

    def _on_event(self, event: MuxEvent, now: float, out: list[ClientEvent]) -> None:
        if isinstance(event, DataReceived):
            sid = event.stream_id
            if sid in self._proxies:
                out.append(event)
            elif sid in self._headers:
                self._on_header_data(sid, event.data, out)
            elif sid in self._calls:
                self.mux.acknowledge(sid, len(event.data))
                self._on_call_data(sid, event.data, out)
            elif sid == self._beat_stream:
                self.mux.acknowledge(sid, len(event.data))
                self._on_echo(event.data, now, out)
            elif sid in self._echoes:
                self.mux.acknowledge(sid, len(event.data))
                if self.mux.send_window(sid) >= len(event.data):
                    self.mux.send_data(sid, event.data)
            elif sid in self._commands:
                self.mux.acknowledge(sid, len(event.data))
                self._on_command_data(sid, self._commands[sid], event.data, out)
        elif isinstance(event, WindowUpdated):
            if event.stream_id in self._proxies:
                out.append(event)
        elif isinstance(event, StreamOpened):
            self._on_opened(event)
        elif isinstance(event, StreamEnded):
            self._on_ended(event.stream_id, out)
        elif isinstance(event, StreamReset):
            sid = event.stream_id
            if sid in self._proxies:
                self._proxies.discard(sid)
                out.append(event)
            call = self._calls.pop(sid, None)
            if call is not None:
                out.append(self._answer_event(sid, call, StreamResetError(sid, event.error_code)))
            self._headers.pop(sid, None)
            self._commands.pop(sid, None)
            self._echoes.discard(sid)
        else:  # GoAwayReceived, SessionFailed
            out.append(event)

    def _on_opened(self, event: StreamOpened) -> None:
        sid, kind = event.stream_id, event.stream_type
        if kind == StreamType.PROXY:
            self._headers[sid] = ProxyHeaderReader()
            return
        if kind in _COMMAND_TYPES or kind == StreamType.STOP_TUNNEL:
            self._commands[sid] = InboundRpc(kind, StreamType(kind).name.title())
        elif kind == StreamType.HEARTBEAT:
            self._echoes.add(sid)
        else:
            self.mux.reset_stream(sid, ErrorCode.STREAM_REFUSED)

    def _on_header_data(self, sid: int, data: bytes, out: list[ClientEvent]) -> None:
        try:
            done = self._headers[sid].feed(data)
        except MessageError:
            self._refuse(sid, ErrorCode.PROTOCOL)
            return
        if done is None:
            self.mux.acknowledge(sid, len(data))
            return
        header, payload = done
        del self._headers[sid]
        self.mux.acknowledge(sid, len(data) - len(payload))
        if header.id not in self.endpoints:
            self._refuse(sid, ErrorCode.STREAM_REFUSED)
            return
        self._proxies.add(sid)
        out.append(ProxyOpened(sid, header))
        if payload:
            out.append(DataReceived(sid, payload))

    def _refuse(self, sid: int, code: int) -> None:
        self._headers.pop(sid, None)
        self.mux.reset_stream(sid, code)

    def _on_ended(self, sid: int, out: list[ClientEvent]) -> None:
        if sid in self._proxies:
            out.append(StreamEnded(sid))
            if not self.mux.is_open(sid):
                self._proxies.discard(sid)
        elif sid in self._headers:  # ended before its header was complete
            self._refuse(sid, ErrorCode.PROTOCOL)
        elif sid in self._calls:
            call = self._calls.pop(sid)
            out.append(self._answer_event(sid, call, None))
            self._end(sid)
        elif sid in self._commands:
            rpc = self._commands.pop(sid)
            if rpc.request is None:
                self._on_command_data(sid, rpc, b"", out, ended=True)
            self._end(sid)
        elif sid in self._echoes:
            self._echoes.discard(sid)
            self._end(sid)

    def _on_call_data(self, sid: int, data: bytes, out: list[ClientEvent]) -> None:
        call = self._calls[sid]
        try:
            call.reader.feed(data)
        except MessageError as exc:
            del self._calls[sid]
            self.mux.reset_stream(sid, ErrorCode.FRAME_SIZE)
            out.append(self._answer_event(sid, call, exc))

    def _answer_event(self, sid: int, call: _Call, failure: TunnelError | None) -> ClientEvent:
        """The event for a finished call: decoded from its answer, or `failure`."""
        kind = call.kind
        try:
            if failure is not None:
                raise failure
            body = call.reader.body()
            if kind == StreamType.AUTH:
                auth = AuthResp.decode(body)
                self.session_id = auth.client_id
                return AuthAnswered(sid, auth)
            if kind == StreamType.BIND:
                bound = BindResp.decode(body)
                self.endpoints[bound.id] = bound
                return BindAnswered(sid, bound)
            decode_unbind_resp(body)
            self.endpoints.pop(call.subject, None)
            return UnbindAnswered(sid, call.subject, None)
        except TunnelError as exc:
            if kind == StreamType.AUTH:
                return AuthAnswered(sid, exc)
            if kind == StreamType.BIND:
                return BindAnswered(sid, exc)
            return UnbindAnswered(sid, call.subject, exc)

    def _on_echo(self, data: bytes, now: float, out: list[ClientEvent]) -> None:
        try:
            latencies = self.heartbeat.on_data(data, now)
        except MessageError:  # a wrong echo: stop beating, as the SDK does
            self._timed_out = True
            out.append(HeartbeatTimedOut())
            return
        out.extend(HeartbeatAnswered(latency) for latency in latencies)

    def _on_command_data(
        self, sid: int, rpc: InboundRpc, data: bytes, out: list[ClientEvent], ended: bool = False
    ) -> None:
        if rpc.request is not None:
            return
        try:
            value = rpc.reader.feed(data)
            if value is None and ended:
                rpc.reader.finish()
        except MessageError as exc:
            rpc.request = exc
            self._answer_command(sid, rpc, str(exc))
            return
        if value is None:
            return
        rpc.request = value
        if rpc.stream_type == StreamType.STOP_TUNNEL:
            try:
                stop = StopTunnel.from_json(value)
            except MessageError:
                return
            self.endpoints.pop(stop.id, None)
            out.append(TunnelStopped(stop))
            return
        performed = rpc.stream_type in self.performs
        self._answer_command(sid, rpc, None if performed else NOT_SUPPORTED)
        out.append(CommandReceived(rpc.stream_type, performed))

    def _answer_command(self, sid: int, rpc: InboundRpc, error: str | None) -> None:
        if rpc.stream_type != StreamType.STOP_TUNNEL and self.mux.is_writable(sid):
            self.mux.send_data(sid, encode_command_resp(error), fin=True)

    def _stream_closed(self, stream_id: int) -> None:
        if not self.mux.is_open(stream_id):
            self._proxies.discard(stream_id)
            self._calls.pop(stream_id, None)
            self._headers.pop(stream_id, None)
            self._commands.pop(stream_id, None)
            self._echoes.discard(stream_id)
