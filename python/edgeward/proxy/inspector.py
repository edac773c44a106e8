"""The traffic inspector on the edge: for the endpoints whose owner opted in
(`endpoint_inspections`, applied by the control-plane watcher), the last N
exchanges in a ring in memory: request and response heads, the first bytes
of each body, the policy's decision trace; redacted before they are kept.

How an exchange is captured without costing the others anything: the
exchange checks one attribute (`Services.taps`, empty unless some endpoint
is inspected) and only for an inspected endpoint asks its `Tap`, which
wraps the exchange's client side (`TapDownstream`): the request body is
teed as the exchange reads it, the response as it is written, up to the cap
(what is forwarded is unchanged; streamed bodies stay streamed), and the
policy's hooks record their trace (`hookdriver.record`). The capture is
kept when the exchange ends (its response ended, or it was aborted or
closed), never later: nothing waits on it.

Replay re-sends a capture, as kept (redacted values stay redacted: the
originals are never kept), to the listener it came in on over loopback;
the edge marks the request with a one-time header it takes off again, so
the replay is captured too, marked as one.
"""

from __future__ import annotations

import base64
import logging
import secrets
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import h11
import trio

from edgeward.hooks import ConnectionInfo, Header, RequestHead, TraceStep
from edgeward.inspection import MAX_RING_BYTES, ReplayRefused, endpoint_names
from edgeward.proxy.transport import Transport, connect, tls_handshake
from edgeward.proxy.watchdog import Timer
from edgeward.redaction import Redactor

if TYPE_CHECKING:
    from edgeward.proxy.exchange import Downstream, Metered
    from edgeward.store.control_rows import InspectionRow

log = logging.getLogger("edgeward.proxy")

REPLAY_HEADER = b"edgeward-replay"  # the one-time mark of a replay (taken off at the edge)
REPLAY_TIMEOUT = 30.0
MAX_REPLAY_RESPONSE = 16 * 1024 * 1024  # read and dropped: the capture has what matters
_OVERHEAD = 512  # bytes counted per capture beyond its heads and bodies
_UNFRAMED = frozenset({b"host", b"content-length", b"transfer-encoding", b"connection"})
# Where a listener bound to every address is reached on loopback.
_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}

# listener name -> (host, port, TLS?) where it listens, or None
Locate = Callable[[str], tuple[str, int, bool] | None]


@dataclass(frozen=True, slots=True)
class Body:
    """The first `max_body_bytes` of a body, redacted (`size`: all of it, as
    seen; `truncated`: whether it was cut, which redaction cannot tell)."""

    data: bytes
    size: int
    truncated: bool

    def as_json(self) -> dict[str, Any]:
        try:
            text, encoding = self.data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(self.data).decode(), "base64"
        return {
            "body": text,
            "body_encoding": encoding,
            "body_size": self.size,
            "body_truncated": self.truncated,
        }


@dataclass(frozen=True, slots=True)
class Record:
    """One captured exchange, redacted: what the ring keeps."""

    id: str
    endpoint_id: str
    started_at: float  # unix time
    duration_s: float
    client: str  # "ip:port"
    listener: str  # where it came in (a replay goes there)
    method: bytes
    target: bytes
    authority: bytes
    scheme: bytes
    http_version: bytes
    request_headers: list[Header]
    request_body: Body
    status: int  # 0: no response (closed, aborted before one)
    response_headers: list[Header]
    response_body: Body
    outcome: str  # completed, aborted, closed, upgraded
    trace: list[dict[str, str | None]]
    replay_of: str | None = None
    size: int = field(default=0, compare=False)

    def decision(self) -> dict[str, str | None] | None:
        """The trace step that decided (an action that answered, closed or
        forwarded), if one did."""
        for step in reversed(self.trace):
            outcome = step["outcome"] or ""
            if step["action"] is not None and outcome != "ran":
                return step
        return None

    def redacted(self, redact: Redactor) -> Record:
        """This capture with `redact`'s secret values taken out too (a secret
        the edge learned after the capture was kept)."""
        values = redact.values

        def headers(kept: list[Header]) -> list[Header]:
            return [(name, values(value)) for name, value in kept]

        def body(kept: Body) -> Body:
            return Body(values(kept.data), kept.size, kept.truncated)

        return replace(
            self,
            target=values(self.target),
            authority=values(self.authority),
            request_headers=headers(self.request_headers),
            request_body=body(self.request_body),
            response_headers=headers(self.response_headers),
            response_body=body(self.response_body),
            trace=[
                {
                    key: text if key == "action" or text is None else redact.text(text)
                    for key, text in step.items()
                }
                for step in self.trace
            ],
        )

    def as_json(self) -> dict[str, Any]:
        """The capture as the admin API shows it (shaped like the ngrok
        agent API's captured requests)."""
        started = datetime.fromtimestamp(self.started_at, UTC)
        return {
            "id": self.id,
            "endpoint_id": self.endpoint_id,
            "start": started.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "duration_ms": round(self.duration_s * 1000, 3),
            "remote_addr": self.client,
            "outcome": self.outcome,
            "replay_of": self.replay_of,
            "request": {
                "method": self.method.decode("latin-1"),
                "uri": self.target.decode("latin-1"),
                "host": self.authority.decode("latin-1"),
                "scheme": self.scheme.decode("latin-1"),
                "proto": f"HTTP/{self.http_version.decode('latin-1')}",
                "headers": _headers_json(self.request_headers),
                **self.request_body.as_json(),
            },
            "response": None
            if not self.status
            else {
                "status_code": self.status,
                "headers": _headers_json(self.response_headers),
                **self.response_body.as_json(),
            },
            "trace": self.trace,
            "decision": self.decision(),
        }


def _headers_json(headers: list[Header]) -> list[list[str]]:
    return [[n.decode("latin-1"), v.decode("latin-1")] for n, v in headers]


class Tap:
    """One inspected endpoint on this node: its settings and its ring."""

    __slots__ = (
        "endpoint_id",
        "max_body",
        "max_requests",
        "pending",
        "records",
        "replayed",
        "size",
    )

    def __init__(self, endpoint_id: str, max_requests: int, max_body: int) -> None:
        self.endpoint_id = endpoint_id
        self.max_requests = max_requests
        self.max_body = max_body
        self.records: deque[Record] = deque()
        self.size = 0  # bytes of the records kept
        self.pending: dict[bytes, str] = {}  # replay mark -> the capture it replays
        self.replayed: dict[bytes, str] = {}  # replay mark -> the capture the replay made

    def begin(
        self, down: Downstream, head: RequestHead, conn: ConnectionInfo, inspector: Inspector
    ) -> tuple[TapDownstream, list[Any]]:
        """Start capturing an exchange: the client side to use instead of
        `down`, and the list its policy records the trace in."""
        capture = _Capture(self, inspector, head, conn)
        if self.pending:
            mark = next((v for n, v in head.headers if n == REPLAY_HEADER), None)
            if mark is not None and mark in self.pending:
                capture.replay_of, capture.mark = self.pending.pop(mark), mark
                head.headers = [h for h in head.headers if h[0] != REPLAY_HEADER]
                capture.headers = list(head.headers)
        return TapDownstream(down, capture), capture.trace

    def keep(self, record: Record, mark: bytes | None) -> None:
        self.records.append(record)
        self.size += record.size
        while self.records and (
            len(self.records) > self.max_requests or self.size > MAX_RING_BYTES
        ):
            self.size -= self.records.popleft().size
        if mark is not None:
            self.replayed[mark] = record.id

    def find(self, capture_id: str) -> Record | None:
        return next((r for r in self.records if r.id == capture_id), None)


class _Capture:
    """What an exchange showed so far (unredacted, never kept as is)."""

    __slots__ = (
        "conn",
        "done",
        "head",
        "headers",
        "inspector",
        "mark",
        "replay_of",
        "request_body",
        "request_size",
        "response_body",
        "response_headers",
        "response_size",
        "started",
        "started_at",
        "status",
        "tap",
        "trace",
    )

    def __init__(
        self,
        tap: Tap,
        inspector: Inspector,
        head: RequestHead,
        conn: ConnectionInfo,
    ) -> None:
        self.tap = tap
        self.inspector = inspector
        self.conn = conn
        # the head as the client sent it (policies change their own copies)
        self.head = RequestHead(
            head.method, head.target, head.authority, head.scheme, [], head.http_version
        )
        self.headers = list(head.headers)
        self.replay_of: str | None = None  # the capture this exchange replays
        self.mark: bytes | None = None  # the replay's one-time mark
        self.started = time.monotonic()
        self.started_at = time.time()
        self.request_body = bytearray()
        self.request_size = 0
        self.status = 0
        self.response_headers: list[Header] = []
        self.response_body = bytearray()
        self.response_size = 0
        self.trace: list[Any] = []
        self.done = False

    def finish(self, outcome: str) -> None:
        if self.done:
            return
        self.done = True
        try:
            self.inspector.keep(self, outcome)
        except Exception:  # never the exchange's problem
            log.exception("traffic inspector: a capture of %s was lost", self.tap.endpoint_id)


class TapDownstream:
    """An exchange's client side (`exchange.Downstream`) with a tee: the
    request body as it is read, the response as it is written, up to the
    tap's cap; the capture is kept when the exchange ends."""

    __slots__ = ("capture", "down")

    def __init__(self, down: Downstream, capture: _Capture) -> None:
        self.down = down
        self.capture = capture

    @property
    def response_started(self) -> bool:
        return self.down.response_started

    @response_started.setter
    def response_started(self, value: bool) -> None:
        self.down.response_started = value

    @property
    def timer(self) -> Timer:
        return self.down.timer

    @timer.setter
    def timer(self, value: Timer) -> None:
        self.down.timer = value

    @property
    def request_trailers(self) -> list[Header]:
        return self.down.request_trailers

    async def receive_body(self) -> bytes:
        chunk = await self.down.receive_body()
        capture = self.capture
        if chunk and not capture.done:
            room = capture.tap.max_body - len(capture.request_body)
            if room > 0:
                capture.request_body += chunk[:room]
            capture.request_size += len(chunk)
        return chunk

    def start_response(self, status: int, headers: list[Header]) -> None:
        capture = self.capture
        capture.status = status
        capture.response_headers = list(headers)
        self.down.start_response(status, headers)

    async def send_data(self, data: bytes) -> None:
        capture = self.capture
        if not capture.done:
            room = capture.tap.max_body - len(capture.response_body)
            if room > 0:
                capture.response_body += data[:room]
            capture.response_size += len(data)
        await self.down.send_data(data)

    def end_response(self, trailers: list[Header]) -> None:
        self.capture.finish("completed")
        self.down.end_response(trailers)

    async def flush(self) -> None:
        await self.down.flush()

    def abort(self) -> None:
        self.capture.finish("aborted")
        self.down.abort()

    def close_connection(self) -> None:
        self.capture.finish("closed")
        self.down.close_connection()

    async def relay_upgraded(
        self, upstream: Transport, upstream_leftover: bytes, meter: Metered
    ) -> None:
        self.capture.finish("upgraded")
        await self.down.relay_upgraded(upstream, upstream_leftover, meter)


class Inspector:
    """The taps of this node, set from the control plane's snapshot."""

    def __init__(self) -> None:
        # endpoint name -> its tap: what exchanges check (shared by every
        # generation; changed in place, so open connections see it at once)
        self.taps: dict[str, Tap] = {}
        self.by_id: dict[str, Tap] = {}
        self.redactor = Redactor()
        self.secrets: frozenset[str] = frozenset()  # the values `redactor` takes out
        self._ids = 0

    def configure(self, rows: Iterable[InspectionRow], secret_values: Iterable[str]) -> None:
        """Apply the opt-ins: a new tap for an endpoint turned on, the ring
        kept when only its bounds changed, dropped when turned off. A secret
        value new to this edge is taken out of the captures already kept
        too: one made before the edge learned it may hold it."""
        values = frozenset(secret_values)
        learned = Redactor(values - self.secrets)
        self.redactor, self.secrets = Redactor(values), values
        by_id: dict[str, Tap] = {}
        for row in rows:
            if not row.enabled:
                continue
            tap = self.by_id.get(row.id) or Tap(row.id, row.max_requests, row.max_body_bytes)
            tap.max_requests, tap.max_body = row.max_requests, row.max_body_bytes
            if learned:
                tap.records = deque(record.redacted(learned) for record in tap.records)
            by_id[row.id] = tap
        self.by_id = by_id
        self.taps.clear()
        for id, tap in by_id.items():
            for name in endpoint_names(id):
                self.taps[name] = tap

    def keep(self, capture: _Capture, outcome: str) -> None:
        """Redact a finished capture and keep it in its tap's ring."""
        redact = self.redactor
        tap = capture.tap
        head = capture.head
        request_headers = redact.headers(capture.headers)
        response_headers = redact.headers(capture.response_headers)
        request_body = redact.body(bytes(capture.request_body), _content_type(capture.headers))
        response_body = redact.body(
            bytes(capture.response_body), _content_type(capture.response_headers)
        )
        trace = [
            {
                "phase": str(step.phase),
                "rule": redact.text(step.rule),
                "action": step.action,
                "outcome": redact.text(step.outcome),
            }
            for step in cast("list[TraceStep]", capture.trace)
        ]
        self._ids += 1
        size = (
            _OVERHEAD
            + len(request_body)
            + len(response_body)
            + sum(len(n) + len(v) for n, v in (*request_headers, *response_headers))
            + len(head.target)
        )
        conn = capture.conn
        record = Record(
            id=f"cap_{secrets.token_hex(6)}{self._ids:06x}",
            endpoint_id=tap.endpoint_id,
            started_at=capture.started_at,
            duration_s=time.monotonic() - capture.started,
            client=f"{conn.client_ip}:{conn.client_port}",
            listener=conn.listener,
            method=head.method,
            target=redact.target(head.target),
            authority=redact.values(head.authority),
            scheme=head.scheme,
            http_version=head.http_version,
            request_headers=request_headers,
            request_body=Body(
                request_body, capture.request_size, capture.request_size > len(capture.request_body)
            ),
            status=capture.status,
            response_headers=response_headers,
            response_body=Body(
                response_body,
                capture.response_size,
                capture.response_size > len(capture.response_body),
            ),
            outcome=outcome,
            trace=trace,
            replay_of=capture.replay_of,
            size=size,
        )
        tap.keep(record, capture.mark)

    # --- what the admin API reads (through admin.dataplane) ---------------------------------

    def captures(self, endpoint_id: str) -> list[Record]:
        """Newest first; empty when the endpoint is not inspected here."""
        tap = self.by_id.get(endpoint_id)
        return list(reversed(tap.records)) if tap is not None else []

    def clear(self, endpoint_id: str) -> int:
        tap = self.by_id.get(endpoint_id)
        if tap is None:
            return 0
        count = len(tap.records)
        tap.records.clear()
        tap.size = 0
        return count

    async def replay(self, endpoint_id: str, capture_id: str, locate: Locate) -> Record:
        """Send the capture again through its endpoint (on loopback, to the
        listener it came in on) and return the capture of the replay.
        `ReplayRefused` says why it cannot be done."""
        tap = self.by_id.get(endpoint_id)
        record = tap.find(capture_id) if tap is not None else None
        if tap is None or record is None:
            raise ReplayRefused(f"no capture {capture_id} of endpoint {endpoint_id} on this edge")
        if record.request_body.truncated:
            raise ReplayRefused(
                f"the request body was cut at {len(record.request_body.data)} bytes"
                f" of {record.request_body.size}: raise max_body_bytes to replay it"
            )
        where = locate(record.listener)
        if where is None:
            raise ReplayRefused(f"the listener {record.listener} is gone")
        mark = secrets.token_hex(16).encode()
        tap.pending[mark] = record.id
        try:
            with trio.fail_after(REPLAY_TIMEOUT):
                await _send(record, where, mark)
        except (OSError, ssl.SSLError, h11.ProtocolError, trio.TooSlowError) as exc:
            raise ReplayRefused(f"the replay failed: {type(exc).__name__}: {exc}") from None
        finally:
            tap.pending.pop(mark, None)
            made = tap.replayed.pop(mark, None)
        replayed = tap.find(made) if made is not None else None
        if replayed is None:
            raise ReplayRefused(
                "the replay was sent, but not captured (was inspection turned off?)"
            )
        return replayed


def _content_type(headers: list[Header]) -> bytes:
    return next((v for n, v in headers if n == b"content-type"), b"")


async def _send(record: Record, where: tuple[str, int, bool], mark: bytes) -> None:
    """The capture's request, as kept, on a new connection to the listener
    `where`; the response is read to its end and dropped."""
    host, port, tls = where
    host = _LOOPBACK.get(host, host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = await connect(family, (host, port), REPLAY_TIMEOUT)
    try:
        if tls:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # our own listener, on loopback
            name = record.authority.decode("latin-1").rsplit(":", 1)[0].strip("[]")
            sock = context.wrap_socket(sock, server_hostname=name, do_handshake_on_connect=False)
            await tls_handshake(sock)
        transport = Transport(sock)
    except BaseException:
        sock.close()
        raise
    try:
        conn = h11.Connection(h11.CLIENT)
        body = record.request_body.data
        headers = [(b"host", record.authority)]
        headers += [(n, v) for n, v in record.request_headers if n not in _UNFRAMED]
        headers += [
            (b"content-length", b"%d" % len(body)),
            (b"connection", b"close"),
            (REPLAY_HEADER, mark),
        ]
        out = conn.send(h11.Request(method=record.method, target=record.target, headers=headers))
        if body:
            out += conn.send(h11.Data(data=body))
        out += conn.send(h11.EndOfMessage())
        await transport.send(out or b"")
        read = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await transport.recv()
                read += len(data)
                if read > MAX_REPLAY_RESPONSE:
                    return
                conn.receive_data(data)
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return
    finally:
        transport.close()


__all__ = ["REPLAY_HEADER", "Body", "Inspector", "Locate", "Record", "Tap", "TapDownstream"]
