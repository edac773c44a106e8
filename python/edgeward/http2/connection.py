"""`H2Server`: one HTTP/2 server connection as a sans-IO object.

It owns an `h2.connection.H2Connection`, turns h2's events into our stream
events, and adds the policies h2 leaves to its user:

* flow control: received data is acknowledged only when the caller says it
  was consumed (`consumed()`), so a slow upstream slows the client down;
* a cap on client resets per time window (CVE-2023-44487, "rapid reset"):
  past it the connection ends with GOAWAY(ENHANCE_YOUR_CALM);
* graceful shutdown with GOAWAY naming the last stream we will finish.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

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

framerepr.install()  # h2 builds a repr of every frame it receives


@dataclass(frozen=True, slots=True)
class H2Limits:
    max_concurrent_streams: int = 100
    max_header_list_size: int = 64 * 1024
    max_resets: int = 200  # client resets allowed per window
    reset_window: float = 10.0
    stream_window: int = 1024 * 1024  # receive window per stream: bounds buffered body
    connection_window: int = 4 * 1024 * 1024


class H2Server:
    def __init__(self, limits: H2Limits = H2Limits()) -> None:
        self.limits = limits
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
        self._extra = b""  # frames we serialise ourselves (graceful GOAWAY)
        self._resets = 0
        self._reset_window_start = 0.0
        self.ended = False

    # --- connection ---------------------------------------------------------------

    def initiate(self) -> None:
        """Our SETTINGS and a larger connection window, before anything else."""
        h2c = self._h2
        h2c.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self.limits.max_concurrent_streams,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: self.limits.max_header_list_size,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: self.limits.stream_window,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
            },
        )
        h2c.initiate_connection()
        extra = self.limits.connection_window - 65535
        if extra > 0:
            h2c.increment_flow_control_window(extra)

    def receive_data(self, data: bytes, now: float) -> list[StreamEvent]:
        if self.ended:
            return []
        try:
            h2_events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            return [self._end(h2.errors.ErrorCodes.PROTOCOL_ERROR, f"protocol error: {exc}")]
        out: list[StreamEvent] = []
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
                    break
        return out

    def data_to_send(self) -> bytes:
        data = self._h2.data_to_send()
        if self._extra:
            data, self._extra = data + self._extra, b""
        return data

    def goaway(self, error_code: int = 0) -> None:
        """No new streams; those already open may finish (shutdown). h2's
        `close_connection` would also forbid finishing them, so the frame is
        written here and h2's state is left open."""
        if not self.ended:
            frame = GoAwayFrame(
                0, last_stream_id=self._h2.highest_inbound_stream_id, error_code=error_code
            )
            self._extra += frame.serialize()

    # --- streams --------------------------------------------------------------------

    def send_headers(self, stream_id: int, status: int, headers: Headers) -> None:
        self._h2.send_headers(stream_id, [(b":status", str(status).encode()), *headers])

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

    def consumed(self, stream_id: int, flow_length: int) -> None:
        """The caller passed `flow_length` body bytes on: reopen the windows."""
        if flow_length:
            with contextlib.suppress(h2.exceptions.ProtocolError):  # the stream closed meanwhile
                self._h2.acknowledge_received_data(flow_length, stream_id)

    def reset(self, stream_id: int, error_code: int = h2.errors.ErrorCodes.CANCEL) -> None:
        with contextlib.suppress(h2.exceptions.ProtocolError):  # already closed
            self._h2.reset_stream(stream_id, error_code)

    # --- internals ---------------------------------------------------------------------

    def _end(self, code: int, reason: str) -> ConnectionEnded:
        if not self.ended:
            self._h2.close_connection(error_code=code)
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
            return self._end(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, "too many stream resets")
        self.reset(stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
        return event

    def _map(self, event: h2.events.Event, now: float) -> StreamEvent | None:
        if isinstance(event, h2.events.DataReceived):
            # an END_STREAM flag arrives as its own StreamEnded event
            return Body(event.stream_id or 0, event.data or b"", event.flow_controlled_length or 0)
        if isinstance(event, h2.events.RequestReceived):
            try:
                return _request(event)
            except MalformedFields:
                return self._malformed(event.stream_id or 0, now, None)
        if isinstance(event, h2.events.StreamEnded):
            return EndBody(event.stream_id)
        if isinstance(event, h2.events.TrailersReceived):
            try:
                return EndBody(event.stream_id or 0, parse_trailers(event.headers or ()))
            except MalformedFields:
                reset = StreamReset(event.stream_id or 0, h2.errors.ErrorCodes.PROTOCOL_ERROR)
                return self._malformed(event.stream_id or 0, now, reset)
        if isinstance(event, h2.events.StreamReset):
            if event.remote_reset and self._too_many_resets(now):
                return self._end(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, "too many stream resets")
            return StreamReset(event.stream_id, int(event.error_code or 0))
        if isinstance(event, h2.events.WindowUpdated):
            return WindowOpened(event.stream_id or 0)
        if isinstance(event, h2.events.RemoteSettingsChanged):
            return WindowOpened(0)  # INITIAL_WINDOW_SIZE may have grown every stream's window
        if isinstance(event, h2.events.ConnectionTerminated):
            self.ended = True
            return ConnectionEnded(int(event.error_code or 0), "client sent GOAWAY")
        return None


def _request(event: h2.events.RequestReceived) -> Request:
    fields = parse_request(event.headers or ())
    return Request(
        event.stream_id or 0,
        fields.method,
        fields.path,
        fields.authority,
        fields.scheme,
        fields.headers,
        event.stream_ended is not None,
    )
