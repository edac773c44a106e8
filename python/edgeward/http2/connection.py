"""`H2Server` on h2: one HTTP/2 server connection as a sans-IO object, the
reference twin of the native fast path (`edgeward.http2.fast`).

It owns an `h2.connection.H2Connection`, turns h2's events into our stream
events, and adds the policies h2 leaves to its user:

* flow control: received data is acknowledged only when the caller says it
  was consumed (`consumed()`), so a slow upstream slows the client down;
* a cap on client resets per time window (CVE-2023-44487, "rapid reset"):
  past it the connection ends with GOAWAY(ENHANCE_YOUR_CALM);
* caps on control frames the client makes us queue (SETTINGS and PING
  acknowledgements, RST_STREAM) and on frames that carry nothing (empty
  DATA, HEADERS and CONTINUATION, PRIORITY, unknown types): the 2019 HTTP/2
  flood CVEs (9512, 9515, 9518); past them, GOAWAY(ENHANCE_YOUR_CALM);
* `SETTINGS_MAX_CONCURRENT_STREAMS` as a stream error (REFUSED_STREAM for
  the stream past it, RFC 9113 §5.1.2), where h2 ends the connection;
* content-length against the DATA received as a stream error
  (PROTOCOL_ERROR, RFC 9113 §8.1.1), where h2 ends the connection;
* graceful shutdown with GOAWAY naming the last stream we will finish, and
  never more than one GOAWAY per way the connection ends.
"""

from __future__ import annotations

import contextlib

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from hyperframe.frame import GoAwayFrame

from edgeward.http2 import framerepr
from edgeward.http2.compression import CachingDecoder, StatelessEncoder
from edgeward.http2.events import (
    Body,
    ConnectionEnded,
    EndBody,
    Headers,
    Request,
    StreamEvent,
    StreamReset,
    WindowOpened,
)
from edgeward.http2.fields import MalformedFields, parse_request, parse_trailers
from edgeward.http2.frames import (
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    HEADERS,
    PRIORITY,
    PUSH_PROMISE,
    FrameScanner,
    answers,
)
from edgeward.http2.limits import MAX_CONTROL_FRAMES, MAX_EMPTY_FRAMES, H2Limits

framerepr.install()  # h2 builds a repr of every frame it receives

_DEFAULT_LIMITS = H2Limits()

__all__ = ["MAX_CONTROL_FRAMES", "MAX_EMPTY_FRAMES", "H2Limits", "H2Server"]

_SLICE = 64
"""Frames handed to h2 at once, at most: the answer count is checked after
each slice, so a flood of answered frames is stopped within one slice."""

_ErrorCodes = h2.errors.ErrorCodes
_CLIENT_DONE, _SERVER_DONE = 1, 2  # the sides of a stream that have ended


class H2Server:
    """`scheme` is the connection's, `https` on TLS and `http` otherwise: a
    request's `:scheme` must be the same."""

    def __init__(self, limits: H2Limits = _DEFAULT_LIMITS, scheme: bytes = b"http") -> None:
        self.limits = limits
        self.scheme = scheme
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            # what we receive is checked by `fields`, in one pass;
            # what we send is checked by our own layers (see docs/http2.md),
            # and the encoder lower-cases names and strips values
            validate_inbound_headers=False,
            normalize_inbound_headers=False,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self._h2 = h2.connection.H2Connection(config)
        self._h2.encoder = StatelessEncoder()  # type: ignore[assignment]
        self._h2.decoder = CachingDecoder()
        self._h2.decoder.max_header_list_size = self._h2.DEFAULT_MAX_HEADER_LIST_SIZE
        self._out: list[bytes] = []  # taken from h2 (to count answers), and our own frames
        self._resets = 0
        self._reset_window_start = 0.0
        self._scanner = FrameScanner()
        self._answers = 0  # control frames queued and not yet written
        self._empty = 0  # consecutive frames that carried nothing
        self._body_left: dict[int, int] = {}  # content-length still to come, per stream
        self._scanned_highest = 0  # the highest stream id the scanner saw open
        self._in_block = False  # a header block is open: CONTINUATION frames may follow
        self._naked_left = 0  # bytes still to come of a CONTINUATION outside a block
        self._unmapped: set[int] = set()  # streams opened by frames h2 has not reported yet
        self._streams: dict[int, int] = {}  # open streams: which sides have ended (bits)
        self._goaway: int | None = None  # error code of the last GOAWAY sent
        self._goaway_last_stream = 0
        self.ended = False

    # --- connection ---------------------------------------------------------------

    def initiate(self) -> None:
        """Our SETTINGS and a larger connection window, before anything else."""
        h2c = self._h2
        codes = h2.settings.SettingCodes
        values = {
            codes.MAX_CONCURRENT_STREAMS: self.limits.max_concurrent_streams,
            codes.MAX_HEADER_LIST_SIZE: self.limits.max_header_list_size,
            codes.INITIAL_WINDOW_SIZE: self.limits.stream_window,
            codes.ENABLE_PUSH: 0,
        }
        h2c.local_settings = h2.settings.Settings(client=False, initial_values=values)
        h2c.initiate_connection()  # advertises them
        # h2 would end the whole connection for a stream past the limit,
        # where RFC 9113 §5.1.2 refuses that stream: h2 keeps the same
        # settings without that limit, and `_open_streams` counts
        values[codes.MAX_CONCURRENT_STREAMS] = 2**31 - 1
        h2c.local_settings = h2.settings.Settings(client=False, initial_values=values)
        # h2 applies MAX_HEADER_LIST_SIZE to its decoder only when a change is
        # acknowledged, and these are the initial values: applied here
        h2c.decoder.max_header_list_size = self.limits.max_header_list_size
        extra = self.limits.connection_window - 65535
        if extra > 0:
            h2c.increment_flow_control_window(extra)

    def receive_data(self, data: bytes, now: float) -> list[StreamEvent]:
        """Events of the frames in `data`. Each frame is checked as its
        header is read (floods, content-length), before h2 has it; h2 gets
        the frames in slices, and first whatever a check needs it to have
        seen (the request a DATA frame belongs to)."""
        if self.ended:
            return []
        if self._naked_left:
            return self._naked_continuation(data)
        max_empty = self.limits.max_empty_frames
        body_left = self._body_left
        unmapped = self._unmapped
        out: list[StreamEvent] = []
        fed = count = 0
        for start, ftype, flags, stream_id, content in self._scanner.scan(data):
            if count == _SLICE or (stream_id in unmapped and ftype <= HEADERS):
                if not self._feed(data[fed:start], now, out):
                    return out
                fed, count = start, 0
            count += 1
            if (
                ftype == CONTINUATION
                and not self._in_block
                and stream_id  # on stream 0, or too long: h2 refuses the header
                and content <= self._h2.max_inbound_frame_size
            ):
                # RFC 9113 §6.10: a connection error whatever the stream's
                # state (h2 resets a stream it has already forgotten), once
                # the frame is whole, as the native server acts on frames
                if self._feed(data[fed:start], now, out):
                    self._naked_left = self._scanner.end - len(data)
                    out += self._naked_continuation(b"")
                return out
            if ftype in {HEADERS, PUSH_PROMISE, CONTINUATION}:
                self._in_block = not flags & END_HEADERS
            if ftype <= HEADERS or ftype == CONTINUATION:
                if content > 0 or (flags & END_STREAM and ftype != CONTINUATION):
                    self._empty = 0
                else:
                    self._empty += 1
            elif ftype == PRIORITY or ftype > CONTINUATION:
                self._empty += 1  # deprecated (RFC 9113 §5.3.2) or unknown: nothing for us
            if self._empty > max_empty:
                if self._feed(data[fed:start], now, out):
                    out.append(self._end(_ErrorCodes.ENHANCE_YOUR_CALM, "too many empty frames"))
                return out
            if ftype == HEADERS and stream_id > self._scanned_highest:
                self._scanned_highest = stream_id
                unmapped.add(stream_id)
            elif (
                ftype <= HEADERS
                and stream_id in body_left
                and self._overruns(stream_id, ftype, flags, content)
            ):
                if not self._feed(data[fed:start], now, out):
                    return out
                fed, count = start, 0
                if stream_id not in body_left:
                    continue  # the frames before it reset the stream
                reset = StreamReset(stream_id, _ErrorCodes.PROTOCOL_ERROR)
                event = self._malformed(stream_id, now, reset)
                if event is not None:
                    out.append(event)
                    if isinstance(event, ConnectionEnded):
                        return out
        self._feed(data[fed:], now, out)
        return out

    def _naked_continuation(self, data: bytes) -> list[StreamEvent]:
        """The connection's end once a CONTINUATION frame outside a header
        block has arrived whole (`_naked_left`: its bytes still to come)."""
        self._naked_left -= len(data)
        if self._naked_left > 0:
            return []
        return [self._end(_ErrorCodes.PROTOCOL_ERROR, "unexpected CONTINUATION frame")]

    def _overruns(self, stream_id: int, ftype: int, flags: int, content: int) -> bool:
        """Whether a DATA frame (or trailers) breaks the stream's declared
        content-length: more than is left, or an end short of it."""
        left = self._body_left[stream_id]
        size = max(content, 0) if ftype == DATA else 0
        if size > left or (flags & END_STREAM and size != left):
            return True
        if flags & END_STREAM:
            del self._body_left[stream_id]
        else:
            self._body_left[stream_id] = left - size
        return False

    def _feed(self, data: bytes, now: float, out: list[StreamEvent]) -> bool:
        """Pass frames to h2 and map its events; False once the connection ended."""
        if self.ended:
            return False
        if not data:
            return True
        self._take_output(count=False)  # responses queued since: not answers
        try:
            h2_events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._goaway = int(exc.error_code)  # h2 sent it
            code = exc.error_code or _ErrorCodes.PROTOCOL_ERROR
            out.append(self._end(code, f"protocol error: {exc}"))
            return False
        said_ended: object = None  # the StreamEnded a Request or trailers already stand for
        for event in h2_events:
            if event is said_ended:
                continue
            if isinstance(event, (h2.events.RequestReceived, h2.events.TrailersReceived)):
                said_ended = event.stream_ended
            mapped = self._map(event, now)
            if mapped is not None:
                out.append(mapped)
                if isinstance(mapped, ConnectionEnded):
                    return False
        self._take_output()
        if self._answers > self.limits.max_control_frames:
            out.append(self._end(_ErrorCodes.ENHANCE_YOUR_CALM, "too many control frames"))
            return False
        return True

    def data_to_send(self) -> bytes:
        self._take_output(count=False)
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    def all_sent(self) -> None:
        """The caller wrote everything `data_to_send` returned to the socket:
        no control frame is outstanding any more."""
        self._answers = 0

    def goaway(self, error_code: int = 0) -> None:
        """No new streams; those already open may finish (shutdown). h2's
        `close_connection` would also forbid finishing them, so the frame is
        written here and h2's state is left open. Sent once: a graceful
        GOAWAY may only be followed by one with an error code."""
        if self.ended or not self._may_goaway(error_code):
            return
        self._goaway_last_stream = self._h2.highest_inbound_stream_id
        frame = GoAwayFrame(0, last_stream_id=self._goaway_last_stream, error_code=error_code)
        self._take_output(count=False)  # what h2 queued before goes first
        self._out.append(frame.serialize())
        self._goaway = error_code

    # --- streams --------------------------------------------------------------------

    def send_headers(
        self, stream_id: int, status: int, headers: Headers, end_stream: bool = False
    ) -> None:
        """The response head; with `end_stream` the whole response (one
        HEADERS frame with END_STREAM: a trailers-only gRPC answer)."""
        fields = [(b":status", str(status).encode()), *headers]
        self._h2.send_headers(stream_id, fields, end_stream=end_stream)
        if end_stream:
            self._side_done(stream_id, _SERVER_DONE)

    def send_window(self, stream_id: int) -> int:
        """How many body bytes may be sent on the stream right now."""
        try:
            window = self._h2.local_flow_control_window(stream_id)
        except h2.exceptions.StreamClosedError:
            return -1
        return min(window, self._h2.max_outbound_frame_size)

    def send_data(self, stream_id: int, data: bytes) -> None:
        self._h2.send_data(stream_id, data)

    def end_stream(self, stream_id: int, trailers: Headers, data: bytes = b"") -> None:
        """End our side of the stream: the last `data` (which must fit the
        send window) carries END_STREAM, unless trailers follow."""
        if data:
            self._h2.send_data(stream_id, data, end_stream=not trailers)
        if trailers:
            self._h2.send_headers(stream_id, trailers, end_stream=True)
        elif not data:
            self._h2.end_stream(stream_id)
        self._side_done(stream_id, _SERVER_DONE)

    def finish_response(
        self,
        stream_id: int,
        head: tuple[int, Headers] | None,
        data: bytes,
        trailers: Headers,
    ) -> bool:
        """The rest of a response in one call: the head unless it was sent
        already, `data` with END_STREAM (or with trailers after it). False,
        and nothing sent, when `data` does not fit the send window; the
        caller then sends the head alone and the rest once the client
        grants window."""
        if data and self.send_window(stream_id) < len(data):
            return False
        if head is not None:
            alone = not data and not trailers
            self.send_headers(stream_id, head[0], head[1], end_stream=alone)
            if alone:
                return True
        self.end_stream(stream_id, trailers, data)
        return True

    def consumed(self, stream_id: int, flow_length: int) -> None:
        """The caller passed `flow_length` body bytes on: reopen the windows."""
        if flow_length:
            with contextlib.suppress(h2.exceptions.ProtocolError):  # the stream closed meanwhile
                self._h2.acknowledge_received_data(flow_length, stream_id)

    def reset(self, stream_id: int, error_code: int = h2.errors.ErrorCodes.CANCEL) -> None:
        self._body_left.pop(stream_id, None)
        self._streams.pop(stream_id, None)
        with contextlib.suppress(h2.exceptions.ProtocolError):  # already closed
            self._h2.reset_stream(stream_id, error_code)

    # --- internals ---------------------------------------------------------------------

    def _side_done(self, stream_id: int, side: int) -> None:
        """One side ended the stream; with both, it no longer counts."""
        done = self._streams.get(stream_id)
        if done is not None:
            if done | side == _CLIENT_DONE | _SERVER_DONE:
                del self._streams[stream_id]
            else:
                self._streams[stream_id] = done | side

    def _open_streams(self) -> int:
        """Streams counting against the limit. Ours are exact in the order
        frames arrive; should one ever miss a close, h2's state corrects it."""
        if len(self._streams) >= self.limits.max_concurrent_streams:
            live = self._h2.streams
            for stream_id in [s for s in self._streams if s not in live or live[s].closed]:
                del self._streams[stream_id]
        return len(self._streams)

    def _take_output(self, count: bool = True) -> None:
        """Move what h2 queued to our buffer; `count` the answers in it
        (what h2 queued while it read frames, and our refusals)."""
        data = self._h2.data_to_send()
        if data:
            if count:
                self._answers += answers(data)
            self._out.append(data)

    def _may_goaway(self, error_code: int) -> bool:
        """At most one GOAWAY per way the connection ends: a graceful one,
        then perhaps one with an error code (RFC 9113 §6.8)."""
        return self._goaway is None or (self._goaway == 0 and error_code != 0)

    def _end(self, code: int, reason: str) -> ConnectionEnded:
        if not self.ended:
            if self._may_goaway(code):
                last = self._goaway_last_stream if self._goaway is not None else None
                self._h2.close_connection(error_code=code, last_stream_id=last)
                self._goaway = int(code)
            self.ended = True
        return ConnectionEnded(int(code), reason)

    def _too_many_resets(self, now: float) -> bool:
        """Count a reset the client caused; True past the limit."""
        if now - self._reset_window_start > self.limits.reset_window:
            self._reset_window_start = now
            self._resets = 0
        self._resets += 1
        return self._resets > self.limits.max_resets

    def _malformed(
        self, stream_id: int, now: float, event: StreamReset | None
    ) -> StreamEvent | None:
        """A malformed message resets its stream. Those resets count like
        the client's own (a client must not get around the rapid-reset limit
        by making us reset its streams: "MadeYouReset", CVE-2025-8671)."""
        if self._too_many_resets(now):
            return self._end(_ErrorCodes.ENHANCE_YOUR_CALM, "too many stream resets")
        self.reset(stream_id, _ErrorCodes.PROTOCOL_ERROR)
        return event

    def _map(self, event: h2.events.Event, now: float) -> StreamEvent | None:
        if isinstance(event, h2.events.DataReceived):
            # an END_STREAM flag arrives as its own StreamEnded event
            return Body(event.stream_id or 0, event.data or b"", event.flow_controlled_length or 0)
        if isinstance(event, h2.events.RequestReceived):
            return self._request(event, now)
        if isinstance(event, h2.events.StreamEnded):
            self._side_done(event.stream_id, _CLIENT_DONE)
            return EndBody(event.stream_id)
        if isinstance(event, h2.events.TrailersReceived):
            try:
                trailers = parse_trailers(event.headers or ())
            except MalformedFields:
                reset = StreamReset(event.stream_id or 0, _ErrorCodes.PROTOCOL_ERROR)
                return self._malformed(event.stream_id or 0, now, reset)
            self._side_done(event.stream_id or 0, _CLIENT_DONE)
            return EndBody(event.stream_id or 0, trailers)
        if isinstance(event, h2.events.StreamReset):
            stream_id = event.stream_id
            self._streams.pop(stream_id, None)
            self._body_left.pop(stream_id, None)
            if event.remote_reset and self._too_many_resets(now):
                return self._end(_ErrorCodes.ENHANCE_YOUR_CALM, "too many stream resets")
            return StreamReset(stream_id, int(event.error_code or 0))
        if isinstance(event, h2.events.WindowUpdated):
            return WindowOpened(event.stream_id or 0)
        if isinstance(event, h2.events.RemoteSettingsChanged):
            return WindowOpened(0)  # INITIAL_WINDOW_SIZE may have grown every stream's window
        if isinstance(event, h2.events.ConnectionTerminated):
            self.ended = True
            return ConnectionEnded(int(event.error_code or 0), "client sent GOAWAY")
        return None

    def _request(self, event: h2.events.RequestReceived, now: float) -> StreamEvent | None:
        stream_id = event.stream_id or 0
        end_stream = event.stream_ended is not None
        self._unmapped.discard(stream_id)
        if self._goaway is not None:  # opened after our GOAWAY: not processed (RFC 9113 §6.8)
            self.reset(stream_id, _ErrorCodes.REFUSED_STREAM)
            return None
        if self._open_streams() >= self.limits.max_concurrent_streams:
            # past the advertised limit: a stream error (RFC 9113 §5.1.2),
            # counted like the resets the client makes
            if self._too_many_resets(now):
                return self._end(_ErrorCodes.ENHANCE_YOUR_CALM, "too many stream resets")
            self.reset(stream_id, _ErrorCodes.REFUSED_STREAM)
            return None
        try:
            fields = parse_request(event.headers or (), self.scheme, end_stream)
        except MalformedFields:
            return self._malformed(stream_id, now, None)
        self._streams[stream_id] = _CLIENT_DONE if end_stream else 0
        if not end_stream:
            if fields.method == b"HEAD":
                self._body_left[stream_id] = 0  # as h2 counts it: no content
            elif fields.content_length is not None:
                self._body_left[stream_id] = fields.content_length
        return Request(
            stream_id,
            fields.method,
            fields.path,
            fields.authority,
            fields.scheme,
            fields.headers,
            end_stream,
        )
