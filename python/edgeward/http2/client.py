"""`H2Client`: one HTTP/2 connection to an upstream as a sans-IO object, on h2.

The proxy's upstream leg for `protocol: http2` endpoints (gRPC services,
agents that speak h2). It opens request streams, sends their bodies and
trailers within the upstream's windows, and turns h2's events into this
package's stream events (`Response`, `Body`, `EndBody`, `StreamReset`,
`WindowOpened`, `ConnectionEnded`): the same language the server side
speaks, so the exchange relays them like an HTTP/1.1 response.

What it adds to h2, as `H2Server` does on the server side:

* flow control as backpressure: received DATA is acknowledged only when the
  caller says it went on to the client (`consumed`), so a slow client slows
  the upstream down instead of filling our memory;
* response and trailer blocks are checked by `fields` (h2's own validation
  is off, as on the server side), and a malformed one resets its stream;
* `can_open`: whether another stream fits the upstream's
  SETTINGS_MAX_CONCURRENT_STREAMS and the connection is still usable (no
  GOAWAY, stream ids left), so a pool can multiplex without ever being
  refused for a limit it was told.

Nothing here touches a socket, a clock or trio.
"""

from __future__ import annotations

import contextlib

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from edgeward.http2 import framerepr
from edgeward.http2.compression import CachingDecoder, StatelessEncoder
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
from edgeward.http2.fields import MalformedFields, parse_response, parse_trailers

framerepr.install()

_ErrorCodes = h2.errors.ErrorCodes
_MAX_STREAM_ID = 2**31 - 1
_SETTINGS = 0x4  # the frame type the server's connection preface starts with (RFC 9113 §3.4)
_GOAWAY = 0x7


class _FramingError(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


STREAM_WINDOW = 1024 * 1024
"""Receive window per stream: bounds what one response may make us buffer."""
CONNECTION_WINDOW = 4 * 1024 * 1024
MAX_HEADER_LIST_SIZE = 256 * 1024
"""Response header block we accept (as `proxy.codecs`' HTTP/1.1 upstream limit)."""


class H2ClientError(Exception):
    """A request could not be started or continued on this connection (it
    ended, the stream is gone); the caller answers its client, the
    connection is not reused for new streams."""


class H2Client:
    def __init__(
        self,
        *,
        stream_window: int = STREAM_WINDOW,
        connection_window: int = CONNECTION_WINDOW,
        max_header_list_size: int = MAX_HEADER_LIST_SIZE,
    ) -> None:
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding=None,
            validate_inbound_headers=False,  # `fields.parse_response`, in one pass
            normalize_inbound_headers=False,
            validate_outbound_headers=False,  # checked on the way in from our client
            normalize_outbound_headers=False,
        )
        self._h2 = h2.connection.H2Connection(config)
        self._h2.encoder = StatelessEncoder()  # type: ignore[assignment]
        self._h2.decoder = CachingDecoder()
        self._h2.decoder.max_header_list_size = max_header_list_size
        self._stream_window = stream_window
        self._connection_window = connection_window
        self._max_header_list_size = max_header_list_size
        self._responded: set[int] = set()  # a response head came, its end is still due
        self._open: set[int] = set()  # streams we opened that the caller still uses
        self.ended = False  # no new streams: GOAWAY either way, or a protocol error
        self._inbuf = bytearray()  # received bytes of a frame not yet whole
        self._first = True  # the upstream's first frame is still to come
        self._goaway: int | None = None  # last stream id of the upstream's graceful GOAWAY

    # --- connection ---------------------------------------------------------------

    def initiate(self) -> None:
        """The preface, our SETTINGS and a larger connection window."""
        h2c = self._h2
        codes = h2.settings.SettingCodes
        h2c.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                codes.ENABLE_PUSH: 0,
                codes.INITIAL_WINDOW_SIZE: self._stream_window,
                codes.MAX_HEADER_LIST_SIZE: self._max_header_list_size,
            },
        )
        h2c.initiate_connection()
        extra = self._connection_window - 65535
        if extra > 0:
            h2c.increment_flow_control_window(extra)

    @property
    def streams(self) -> int:
        """Streams opened and not yet over for the caller (`stream_over`)."""
        return len(self._open)

    @property
    def can_open(self) -> bool:
        """Whether a new stream may be opened now."""
        h2c = self._h2
        return (
            not self.ended
            and h2c.open_outbound_streams < h2c.remote_settings.max_concurrent_streams
            and h2c.highest_outbound_stream_id + 2 <= _MAX_STREAM_ID
        )

    def receive_data(self, data: bytes) -> list[ClientEvent]:
        """The events of the frames in `data` (b"" is the end of the connection)."""
        if self.ended and not self.streams and self._goaway is None:
            return []
        if not data:
            return [self._end(_ErrorCodes.NO_ERROR, "the upstream closed the connection")]
        try:
            data, goaways = self._frames(data)
        except _FramingError as exc:
            return [self._end(exc.code, str(exc))]
        out: list[ClientEvent] = []
        if data:
            try:
                events = self._h2.receive_data(data)
            except h2.exceptions.ProtocolError as exc:
                code = exc.error_code or _ErrorCodes.PROTOCOL_ERROR
                return [self._end(code, f"protocol error: {exc}")]
            for event in events:
                mapped = self._map(event)
                if mapped is not None:
                    out.append(mapped)
                    if isinstance(mapped, ConnectionEnded):
                        return out
        for last_stream_id, error in goaways:
            out += self._going_away(last_stream_id, error)
            if self.ended and self._goaway is None:
                break
        return out

    def _frames(self, data: bytes) -> tuple[bytes, list[tuple[int, int]]]:
        """The whole frames received so far for h2, without the GOAWAY
        frames, which come back as (last stream id, error code): h2 stops
        processing every stream at a GOAWAY, where RFC 9113 §6.8 lets those
        up to its last stream id finish (nginx sends one every 1000
        requests, gRPC servers at their max connection age). The
        upstream's first frame must be SETTINGS (§3.4): h2 would wait for
        the rest of a "frame" megabytes long when an HTTP/1.1 server
        answers. Raises `_FramingError`."""
        buf = self._inbuf
        buf += data
        end = len(buf)
        pos = start = 0
        pieces: list[bytes] = []
        goaways: list[tuple[int, int]] = []
        max_size = self._h2.max_inbound_frame_size
        while end - pos >= 9:
            length = int.from_bytes(buf[pos : pos + 3], "big")
            ftype = buf[pos + 3]
            if self._first:
                if ftype != _SETTINGS or int.from_bytes(buf[pos + 5 : pos + 9], "big"):
                    raise _FramingError(
                        _ErrorCodes.PROTOCOL_ERROR, "the upstream does not speak HTTP/2"
                    )
                self._first = False
            if length > max_size:
                raise _FramingError(_ErrorCodes.FRAME_SIZE_ERROR, f"a frame of {length} bytes")
            if end - pos < 9 + length:
                break
            if ftype == _GOAWAY:
                if length < 8:
                    raise _FramingError(_ErrorCodes.FRAME_SIZE_ERROR, "a short GOAWAY")
                payload = bytes(buf[pos + 9 : pos + 17])
                last = int.from_bytes(payload[:4], "big") & _MAX_STREAM_ID
                goaways.append((last, int.from_bytes(payload[4:], "big")))
                pieces.append(bytes(buf[start:pos]))
                start = pos + 9 + length
            pos += 9 + length
        pieces.append(bytes(buf[start:pos]))
        del buf[:pos]
        return b"".join(pieces) if len(pieces) > 1 else pieces[0], goaways

    def _going_away(self, last_stream_id: int, code: int) -> list[ClientEvent]:
        """The upstream's GOAWAY: no new streams. With NO_ERROR, streams up
        to `last_stream_id` go on, and those above it were not processed
        (reset with REFUSED_STREAM: safe to retry elsewhere). With an
        error, the connection is over."""
        self.ended = True
        if code != _ErrorCodes.NO_ERROR:
            self._goaway = None
            return [self._end(code, f"the upstream sent GOAWAY ({code})", last_stream_id)]
        self._goaway = last_stream_id
        out: list[ClientEvent] = []
        for stream_id in sorted(self._open):
            if stream_id > last_stream_id:
                with contextlib.suppress(h2.exceptions.ProtocolError):
                    self._h2.reset_stream(stream_id, _ErrorCodes.CANCEL)
                out.append(StreamReset(stream_id, _ErrorCodes.REFUSED_STREAM))
        return out

    def data_to_send(self) -> bytes:
        return self._h2.data_to_send()

    def retire(self) -> None:
        """Open no more streams; those in flight finish. (No GOAWAY yet: h2
        would stop processing them.)"""
        self.ended = True

    def close(self) -> None:
        """GOAWAY(NO_ERROR): the connection is over."""
        self.ended = True
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self._h2.close_connection()

    # --- streams --------------------------------------------------------------------

    def send_request(self, headers: Headers, end_stream: bool) -> int:
        """Open a stream with the request's header block (pseudo-headers
        first); its id. Raises `H2ClientError` when `can_open` is false."""
        if not self.can_open:
            raise H2ClientError("no stream can be opened on this connection")
        h2c = self._h2
        stream_id = h2c.get_next_available_stream_id()
        try:
            h2c.send_headers(stream_id, headers, end_stream=end_stream)
        except h2.exceptions.ProtocolError as exc:
            raise H2ClientError(str(exc)) from None
        self._open.add(stream_id)
        return stream_id

    def send_window(self, stream_id: int) -> int:
        """How many body bytes may be sent on the stream now; -1 once it is closed."""
        try:
            window = self._h2.local_flow_control_window(stream_id)
        except (h2.exceptions.StreamClosedError, h2.exceptions.NoSuchStreamError):
            return -1
        return min(window, self._h2.max_outbound_frame_size)

    def send_data(self, stream_id: int, data: bytes, end_stream: bool = False) -> None:
        """`data` must fit `send_window`."""
        try:
            self._h2.send_data(stream_id, data, end_stream=end_stream)
        except h2.exceptions.ProtocolError as exc:
            raise H2ClientError(str(exc)) from None

    def end_stream(self, stream_id: int, trailers: Headers) -> None:
        """End the request: with trailers (HEADERS with END_STREAM), else an
        empty DATA frame with END_STREAM."""
        try:
            if trailers:
                self._h2.send_headers(stream_id, trailers, end_stream=True)
            else:
                self._h2.end_stream(stream_id)
        except h2.exceptions.ProtocolError as exc:
            raise H2ClientError(str(exc)) from None

    def consumed(self, stream_id: int, flow_length: int) -> None:
        """The caller passed `flow_length` body bytes on: reopen the windows."""
        if flow_length:
            with contextlib.suppress(h2.exceptions.ProtocolError):  # the stream closed meanwhile
                self._h2.acknowledge_received_data(flow_length, stream_id)

    def reset(self, stream_id: int, error_code: int = _ErrorCodes.CANCEL) -> None:
        """Give up on a stream (our client went away, a timeout): RST_STREAM."""
        with contextlib.suppress(h2.exceptions.ProtocolError):  # already closed
            self._h2.reset_stream(stream_id, error_code)
        self.stream_over(stream_id)

    def stream_over(self, stream_id: int) -> None:
        """The caller is done with the stream (it ended or was reset)."""
        self._responded.discard(stream_id)
        self._open.discard(stream_id)

    # --- internals ---------------------------------------------------------------------

    def _end(self, code: int, reason: str, last_stream_id: int = 0) -> ConnectionEnded:
        self.ended = True
        return ConnectionEnded(int(code), reason, last_stream_id)

    def _malformed(self, stream_id: int) -> StreamReset:
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self._h2.reset_stream(stream_id, _ErrorCodes.PROTOCOL_ERROR)
        return StreamReset(stream_id, _ErrorCodes.PROTOCOL_ERROR)

    def _map(self, event: h2.events.Event) -> ClientEvent | None:
        if isinstance(event, h2.events.DataReceived):
            return Body(event.stream_id or 0, event.data or b"", event.flow_controlled_length or 0)
        if isinstance(event, h2.events.ResponseReceived):
            stream_id = event.stream_id or 0
            try:
                status, headers = parse_response(event.headers or ())
            except MalformedFields:
                return self._malformed(stream_id)
            end_stream = event.stream_ended is not None  # its StreamEnded is this Response
            if not end_stream:
                self._responded.add(stream_id)
            return Response(stream_id, status, headers, end_stream)
        if isinstance(event, h2.events.StreamEnded):
            stream_id = event.stream_id or 0
            if stream_id in self._responded:  # else: said by Response/trailers already
                self._responded.discard(stream_id)
                return EndBody(stream_id)
            return None
        if isinstance(event, h2.events.TrailersReceived):
            stream_id = event.stream_id or 0
            try:
                trailers = parse_trailers(event.headers or ())
            except MalformedFields:
                return self._malformed(stream_id)
            self._responded.discard(stream_id)  # the StreamEnded that follows is this end
            return EndBody(stream_id, trailers)
        if isinstance(event, h2.events.StreamReset):
            self._responded.discard(event.stream_id or 0)
            return StreamReset(event.stream_id or 0, int(event.error_code or 0))
        if isinstance(event, h2.events.WindowUpdated):
            return WindowOpened(event.stream_id or 0)
        if isinstance(event, h2.events.RemoteSettingsChanged):
            return WindowOpened(0)  # INITIAL_WINDOW_SIZE (or the stream limit) may have grown
        if isinstance(event, h2.events.ConnectionTerminated):
            reason = f"the upstream sent GOAWAY ({event.error_code!r})"
            return self._end(int(event.error_code or 0), reason, event.last_stream_id or 0)
        return None  # 1xx (InformationalResponseReceived), pings, settings acks, priority
