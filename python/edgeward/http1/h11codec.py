"""The reference codecs: h11 behind our event contract.

h11 is the well-understood model the fast path is tested against. Where h11
accepts more than edgeward does (bare LF line ends, obs-fold, control
characters in values, duplicate Content-Length, Content-Length next to
Transfer-Encoding, any token as a method, any HTTP/x.y version, inexact head
size limits), the checks of `edgeward.http1.rules` run on the raw bytes
before h11 parses them, so both codecs reject the same input with the same
status. docs/http1.md lists each case.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import h11

from edgeward.http1 import rules
from edgeward.http1.codec import DEFAULT_LIMITS, Limits
from edgeward.http1.events import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    InformationalResponse,
    LocalProtocolError,
    ProtocolError,
    Request,
    Response,
    State,
    _Sentinel,
)

_STATES = {getattr(h11, state.name): state for state in State}


def _headers(h: h11._headers.Headers) -> list[tuple[bytes, bytes]]:
    return [(name, value) for name, value in h]


_FROM_H11: dict[type, Callable[[Any], Event]] = {
    h11.Request: lambda e: Request(e.method, e.target, _headers(e.headers), e.http_version),
    h11.Response: lambda e: Response(e.status_code, _headers(e.headers), e.http_version, e.reason),
    h11.InformationalResponse: lambda e: InformationalResponse(
        e.status_code, _headers(e.headers), e.http_version, e.reason
    ),
    h11.Data: lambda e: Data(bytes(e.data)),
    h11.EndOfMessage: lambda e: EndOfMessage(_headers(e.headers)),
    h11.ConnectionClosed: lambda e: ConnectionClosed(),
}

_TO_H11: dict[type, Callable[[Any], h11._events.Event]] = {
    Request: lambda e: h11.Request(
        method=e.method, target=e.target, headers=e.headers, http_version=e.http_version
    ),
    Response: lambda e: h11.Response(
        status_code=e.status_code, headers=e.headers, http_version=e.http_version, reason=e.reason
    ),
    InformationalResponse: lambda e: h11.InformationalResponse(
        status_code=e.status_code, headers=e.headers, http_version=e.http_version, reason=e.reason
    ),
    Data: lambda e: h11.Data(data=e.data),
    EndOfMessage: lambda e: h11.EndOfMessage(headers=e.headers),
    ConnectionClosed: lambda e: h11.ConnectionClosed(),
}


def _disables_keep_alive(event: Event) -> bool:
    if not isinstance(event, Request | Response):
        return False
    if event.http_version < b"1.1":
        return True
    return any(
        b"close" in (token.strip() for token in value.lower().split(b","))
        for name, value in event.headers
        if name.lower() == b"connection"
    )


def _check_headers_to_send(headers: list[tuple[bytes, bytes]]) -> None:
    """Our contract is stricter than h11's on what may be sent: names are
    lower-case, values hold no control characters (h11 allows some)."""
    for name, value in headers:
        if name != name.lower() or rules.has_bad_field_byte(value):
            raise h11.LocalProtocolError(f"illegal header {name!r}: {value!r}")


class _H11Codec:
    _role: type[h11._util.Sentinel]

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        # Our limits are exact and checked first; h11's own bound (on whatever
        # incomplete thing it buffers) must never fire before them.
        backstop = max(limits.max_header_bytes, rules.MAX_CHUNK_LINE) + 16
        self._conn = h11.Connection(self._role, max_incomplete_event_size=backstop)
        self._keep_alive = True
        self._failed = False
        self._chunks: _ChunkTracker | None = None
        self._sent_method: bytes | None = None
        self._stray = False  # (client) bytes after a complete response: must close

    # --- receiving ---------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if data and self._role is h11.CLIENT and self._conn.their_state is h11.DONE:
            self._stray_bytes()
        self._conn.receive_data(data)

    def _stray_bytes(self) -> None:
        """(client) The server sent bytes after a complete response, before
        our next request (an injected second response, a body to a HEAD):
        they must never be read as the next answer, so the connection must
        close. h11 would start the next cycle and read them; we end
        keep-alive, report MUST_CLOSE for DONE and refuse `start_next_cycle`,
        as the fast codec does."""
        self._stray = True
        self._keep_alive = False

    def next_event(self) -> Event | _Sentinel:
        if self._failed:
            raise ProtocolError("the peer already violated HTTP/1.1")
        conn = self._conn
        try:
            if conn.their_state is h11.MUST_CLOSE and conn.trailing_data[0]:
                # h11 calls this an error; the exchange is over and the
                # connection closing, so whatever follows is simply not read.
                return PAUSED
            if self._expecting_head():
                data, closed = conn.trailing_data
                if data:
                    end = rules.find_head_end(data, self._limits)
                    if end < 0:
                        if closed:
                            raise ProtocolError("peer closed the connection mid-head")
                        return NEED_DATA
                    self._check_head(data[: end - 4].split(b"\r\n"))
                event = conn.next_event()
            elif self._chunks is not None:
                event = self._chunks.next_event(conn, self._limits)
            else:
                event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            self._fail()
            raise ProtocolError(str(exc), exc.error_status_hint) from None
        except ProtocolError:
            self._fail()
            raise
        if event is h11.NEED_DATA:
            return NEED_DATA
        if event is h11.PAUSED:
            return PAUSED
        ours = _FROM_H11[type(event)](event)
        if _disables_keep_alive(ours):
            self._keep_alive = False
        if type(event) is h11.EndOfMessage:
            self._chunks = None
            if self._role is h11.CLIENT and conn.trailing_data[0]:
                self._stray_bytes()
        elif type(event) in (h11.Request, h11.Response) and self._chunked_body(ours):
            self._chunks = _ChunkTracker()
        return ours

    def _chunked_body(self, head: Event) -> bool:
        """Whether h11 now reads the body of `head` as chunked."""
        if not isinstance(head, Request | Response):
            return False
        if isinstance(head, Response) and (
            head.status_code in (204, 304)
            or self._sent_method == b"HEAD"
            or (self._sent_method == b"CONNECT" and head.status_code < 300)
        ):
            return False
        return any(name == b"transfer-encoding" for name, _ in head.headers)

    def _expecting_head(self) -> bool:
        raise NotImplementedError

    def _check_head(self, lines: list[bytes]) -> None:
        raise NotImplementedError

    def _fail(self) -> None:
        self._failed = True
        self._keep_alive = False

    # --- sending -------------------------------------------------------------------

    def send(self, event: Event) -> bytes:
        try:
            if isinstance(event, Request | Response | InformationalResponse | EndOfMessage):
                _check_headers_to_send(event.headers)
            out = self._conn.send(_TO_H11[type(event)](event))
        except h11.LocalProtocolError as exc:
            self._conn.send_failed()  # also when h11 refused to build the event
            self._keep_alive = False
            raise LocalProtocolError(str(exc)) from None
        if _disables_keep_alive(event):
            self._keep_alive = False
        if isinstance(event, Request):
            self._sent_method = event.method
        return out or b""

    def start_next_cycle(self) -> None:
        if self._stray:
            raise LocalProtocolError("not in a reusable state: the server sent stray bytes")
        try:
            self._conn.start_next_cycle()
        except h11.LocalProtocolError as exc:
            raise LocalProtocolError(str(exc)) from None

    # --- state ---------------------------------------------------------------------

    @property
    def our_state(self) -> State:
        return self._state(self._conn.our_state)

    @property
    def their_state(self) -> State:
        return State.ERROR if self._failed else self._state(self._conn.their_state)

    def _state(self, state: type[h11._util.Sentinel]) -> State:
        if self._stray and state is h11.DONE:
            return State.MUST_CLOSE  # what h11 would say had keep-alive ended
        return _STATES[state]

    @property
    def keep_alive(self) -> bool:
        return self._keep_alive

    @property
    def they_are_waiting_for_100_continue(self) -> bool:
        return self._conn.they_are_waiting_for_100_continue

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        return self._conn.trailing_data


class _ChunkTracker:
    """Follows h11 through a chunked body to check each chunk-size line and
    the trailer section before h11 reads them (h11 accepts any bytes after
    ";", obs-fold and bare LF in trailers). h11 consumes whole units (the CRLF
    after chunk data, a chunk-size line, the trailer section), so the bytes it
    took from its buffer tell where it is."""

    SIZE, DATA, TRAILERS = range(3)

    def __init__(self) -> None:
        self.at = self.SIZE
        self.crlf_left = 0  # of the CRLF after the last chunk's data, still unread
        self.line_size = 0  # size announced by the line last checked

    def next_event(self, conn: h11.Connection, limits: Limits) -> Any:
        data = conn.trailing_data[0]
        if self.at == self.SIZE:
            line = rules.check_chunk_line(data[self.crlf_left :])
            if line is not None:
                length, self.line_size = line
                if self.line_size == 0:
                    rules.check_trailer_section(data[self.crlf_left + length :], limits)
        elif self.at == self.TRAILERS:
            rules.check_trailer_section(data, limits)
        event = conn.next_event()
        if type(event) is h11.Data:
            if event.chunk_end:
                self.at, self.crlf_left = self.SIZE, 2
            else:
                self.at = self.DATA
        elif event is h11.NEED_DATA and self.at == self.SIZE:
            taken = len(data) - len(conn.trailing_data[0])
            crlf = min(taken, self.crlf_left)
            self.crlf_left -= crlf
            if taken > crlf:  # the chunk-size line, too
                self.at = self.DATA if self.line_size else self.TRAILERS
        return event


class H11ServerCodec(_H11Codec):
    """Server side: parses requests, serialises responses."""

    _role = h11.SERVER

    def _expecting_head(self) -> bool:
        return self._conn.their_state is h11.IDLE

    def _check_head(self, lines: list[bytes]) -> None:
        rules.check_request_head(lines, self._limits)


class H11ClientCodec(_H11Codec):
    """Client side: serialises requests, parses responses."""

    _role = h11.CLIENT

    def _expecting_head(self) -> bool:
        return self._conn.their_state in (h11.IDLE, h11.SEND_RESPONSE)

    def _check_head(self, lines: list[bytes]) -> None:
        rules.check_response_head(lines, self._limits)
