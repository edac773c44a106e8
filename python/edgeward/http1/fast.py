"""The fast HTTP/1.1 codecs: llhttp parses message heads, this module does the
rest of the message layer.

llhttp (through httptools) is a strict, well-kept C parser of the request
line, status line and header fields. Around it this module finds where each
head ends (so limits are exact and pipelined messages never run together),
builds the events and header lists, decides the framing of every body
(Content-Length, chunked, until close, none for HEAD/1xx/204/304 and
switched protocols), decodes chunked bodies and trailers itself, keeps the
connection state machine (h11's states, in small integers) and serialises
outgoing messages, chunking bodies when needed.

It is written in Cython's pure-Python mode: this file is the pure-Python twin
and `_fast.pyx` compiles the very same source. The acceptance rules are the
ones of `edgeward.http1.rules`, implemented independently here (the
differential tests compare both codecs); docs/http1.md has the table.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Final

import httptools

try:
    import cython
except ModuleNotFoundError:  # pragma: no cover - Cython is a build-time tool
    from edgeward.http1 import _cython_shim as cython  # type: ignore[no-redef]

from edgeward.http1.codec import DEFAULT_LIMITS, Limits
from edgeward.http1.events import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    Headers,
    InformationalResponse,
    LocalProtocolError,
    ProtocolError,
    Request,
    Response,
    State,
    _Sentinel,
)
from edgeward.http1.rules import KNOWN_METHODS

# --- states, events and framings as small integers ------------------------------------

IDLE: Final = 0
SEND_RESPONSE: Final = 1
SEND_BODY: Final = 2
DONE: Final = 3
MUST_CLOSE: Final = 4
CLOSED: Final = 5
MIGHT_SWITCH: Final = 6
SWITCHED: Final = 7
ERROR: Final = 8
_STATES: Final = (
    State.IDLE,
    State.SEND_RESPONSE,
    State.SEND_BODY,
    State.DONE,
    State.MUST_CLOSE,
    State.CLOSED,
    State.MIGHT_SWITCH_PROTOCOL,
    State.SWITCHED_PROTOCOL,
    State.ERROR,
)

E_REQUEST: Final = 0
E_INFORMATIONAL: Final = 1
E_RESPONSE: Final = 2
E_DATA: Final = 3
E_END: Final = 4
E_CLOSED: Final = 5
E_SWITCH_UPGRADE: Final = 6  # a 101 accepting an Upgrade
E_SWITCH_CONNECT: Final = 7  # a 2xx accepting a CONNECT
E_REQUEST_SEEN: Final = 8  # the server's side of a client's Request


def _t(state: int, event: int) -> int:
    return state * 16 + event


# Event-triggered transitions of h11 (h11/_state.py), keyed by _t(state, event).
_CLIENT_MOVES: Final = {
    _t(IDLE, E_REQUEST): SEND_BODY,
    _t(IDLE, E_CLOSED): CLOSED,
    _t(SEND_BODY, E_DATA): SEND_BODY,
    _t(SEND_BODY, E_END): DONE,
    _t(DONE, E_CLOSED): CLOSED,
    _t(MUST_CLOSE, E_CLOSED): CLOSED,
    _t(CLOSED, E_CLOSED): CLOSED,
}
_SERVER_MOVES: Final = {
    _t(IDLE, E_CLOSED): CLOSED,
    _t(IDLE, E_RESPONSE): SEND_BODY,
    _t(IDLE, E_REQUEST_SEEN): SEND_RESPONSE,
    _t(SEND_RESPONSE, E_INFORMATIONAL): SEND_RESPONSE,
    _t(SEND_RESPONSE, E_RESPONSE): SEND_BODY,
    _t(SEND_RESPONSE, E_SWITCH_UPGRADE): SWITCHED,
    _t(SEND_RESPONSE, E_SWITCH_CONNECT): SWITCHED,
    _t(SEND_BODY, E_DATA): SEND_BODY,
    _t(SEND_BODY, E_END): DONE,
    _t(DONE, E_CLOSED): CLOSED,
    _t(MUST_CLOSE, E_CLOSED): CLOSED,
    _t(CLOSED, E_CLOSED): CLOSED,
}
# State-triggered transitions: (client, server) -> new client / server state.
_CLIENT_FOLLOWS: Final = {
    (MIGHT_SWITCH, SWITCHED): SWITCHED,
    (DONE, CLOSED): MUST_CLOSE,
    (IDLE, CLOSED): MUST_CLOSE,
    (DONE, ERROR): MUST_CLOSE,
}
_SERVER_FOLLOWS: Final = {
    (CLOSED, DONE): MUST_CLOSE,
    (CLOSED, IDLE): MUST_CLOSE,
    (ERROR, DONE): MUST_CLOSE,
}

F_LENGTH: Final = 0
F_CHUNKED: Final = 1
F_UNTIL_CLOSE: Final = 2

C_SIZE: Final = 0  # chunked body: expecting a chunk-size line
C_DATA: Final = 1
C_CRLF: Final = 2
C_TRAILERS: Final = 3

P_CONNECT: Final = 1  # pending switch proposals (bit set)
P_UPGRADE: Final = 2

# --- byte classes and small grammars ---------------------------------------------------

_TCHAR: Final = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_LOWER_TCHAR: Final = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
_VCHAR: Final = bytes(range(0x21, 0x7F))
_OBS_TEXT: Final = bytes(range(0x80, 0x100))
_FIELD_CHAR: Final = b"\t " + _VCHAR + _OBS_TEXT  # what a field value may contain
_HEXDIG: Final = b"0123456789abcdefABCDEF"
_DIGIT: Final = b"0123456789"
_AUTHORITY_CHAR: Final = b"-._~%!$&'()*+,;=:@[]0123456789" + bytes(range(65, 91)) + bytes(range(97, 123))

_FIELD_LINE: Final = re.compile(
    rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*((?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?)[ \t]*"
)
_CHUNK_EXT_ITEM: Final = (
    rb"[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:[ \t]*=[ \t]*(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
    rb'|"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"))?'
)
# chunk-ext (RFC 9112 §7.1.1) right after the size: ";" directly after the digits.
_CHUNK_EXT: Final = re.compile(rb";" + _CHUNK_EXT_ITEM + rb"(?:[ \t]*;" + _CHUNK_EXT_ITEM + rb")*[ \t]*")
MAX_CHUNK_LINE: Final = 4096
MAX_LENGTH_DIGITS: Final = 18

_CONTENT_LENGTH: Final = b"content-length"
_TRANSFER_ENCODING: Final = b"transfer-encoding"
_CONNECTION: Final = b"connection"
_HOST: Final = b"host"
_UPGRADE: Final = b"upgrade"
_EXPECT: Final = b"expect"
_SPECIAL: Final = frozenset(
    (_CONTENT_LENGTH, _TRANSFER_ENCODING, _CONNECTION, _HOST, _UPGRADE, _EXPECT)
)
_REASONS: Final = {s.value: s.phrase.encode("ascii") for s in HTTPStatus}


@cython.cfunc
def _has_bare_lf(buf: object, start: int, end: int) -> bool:
    """Whether buf[start:end] holds an LF not preceded by a CR (in range)."""
    return buf.count(b"\n", start, end) != buf.count(b"\r\n", start, end)  # type: ignore[attr-defined,no-any-return]


def _comma_tokens(values: list[bytes]) -> list[bytes]:
    """The lower-cased, comma-separated tokens of list-valued fields."""
    out = []
    for value in values:
        for token in value.lower().split(b","):
            token = token.strip(b" \t")
            if token:
                out.append(token)
    return out


@cython.cfunc
def _check_request_line(line: bytes, limits: Limits) -> tuple[bytes, bytes, bytes]:
    """method SP request-target SP HTTP-version, checked in the order of
    `rules.check_request_line`: syntax (400), version (505), method (501),
    target form (400), target length (414)."""
    sp1 = line.find(b" ")
    sp2 = line.find(b" ", sp1 + 1)
    if sp1 <= 0 or sp2 <= sp1 + 1:
        raise ProtocolError("malformed request line")
    method = line[:sp1]
    target = line[sp1 + 1 : sp2]
    version = line[sp2 + 1 :]
    if (
        method.translate(None, _TCHAR)
        or target.translate(None, _VCHAR)
        or len(version) != 8
        or version[:5] != b"HTTP/"
        or version[6] != 46  # "."
        or version[5:6].translate(None, _DIGIT)
        or version[7:8].translate(None, _DIGIT)
        or not version[5:6]
    ):
        raise ProtocolError("malformed request line")
    if version != b"HTTP/1.1" and version != b"HTTP/1.0":
        raise ProtocolError("HTTP version not supported", 505)
    if method not in KNOWN_METHODS:
        raise ProtocolError("unknown method", 501)
    first = target[0]
    if method == b"CONNECT":
        colon = target.rfind(b":")
        form_ok = (
            colon >= 0
            and colon + 1 < len(target)
            and not target[colon + 1 :].translate(None, _DIGIT)
            and not target[:colon].translate(None, _AUTHORITY_CHAR.replace(b"@", b""))
        )
    elif first == 47:  # "/": origin-form, the common case
        form_ok = True
    elif target == b"*":
        form_ok = method == b"OPTIONS"
    else:
        form_ok = _is_absolute_form(target)
    if not form_ok:
        raise ProtocolError("malformed request-target")
    if len(target) > limits.max_target_length:
        raise ProtocolError("request-target too long", 414)
    return method, target, version[5:]


def _is_absolute_form(target: bytes) -> bool:
    """http(s)://authority followed by nothing or by /, ? or #."""
    lowered = target[:8].lower()
    if lowered.startswith(b"http://"):
        start = 7
    elif lowered.startswith(b"https://"):
        start = 8
    else:
        return False
    end = len(target)
    for stop in (b"/", b"?", b"#"):
        at = target.find(stop, start)
        if 0 <= at < end:
            end = at
    return not target[start:end].translate(None, _AUTHORITY_CHAR)


@cython.cfunc
def _check_status_line(line: bytes) -> tuple[int, bytes, bytes]:
    """HTTP-version SP 3DIGIT [SP reason]: syntax (400), then version (505)."""
    if (
        len(line) < 12
        or line[:5] != b"HTTP/"
        or line[6] != 46
        or line[8] != 32
        or line[5:6].translate(None, _DIGIT)
        or line[7:8].translate(None, _DIGIT)
        or line[9:12].translate(None, _DIGIT)
        or line[9] == 48  # a status below 100
        or (len(line) > 12 and line[12] != 32)
        or line[13:].translate(None, _FIELD_CHAR)
    ):
        raise ProtocolError("malformed status line")
    version = line[5:8]
    if version != b"1.1" and version != b"1.0":
        raise ProtocolError("HTTP version not supported", 505)
    return int(line[9:12]), line[13:], version


@cython.cfunc
def _parse_chunk_size(line: bytes) -> int:
    """chunk-size [chunk-ext] [OWS] (the line without its CRLF): 1-16 hex
    digits; extensions must follow RFC 9112 §7.1.1 and are dropped."""
    semi = line.find(b";")
    if semi >= 0:
        size = line[:semi]
        if _CHUNK_EXT.fullmatch(line, semi) is None:
            raise ProtocolError("malformed chunk extension")
    else:
        size = line.rstrip(b" \t")
    if not size or len(size) > 16 or size.translate(None, _HEXDIG):
        raise ProtocolError("malformed chunk size")
    return int(size, 16)


def _parse_fields(block: bytes) -> Headers:
    """Field lines (a trailer section) split on CRLF, validated as llhttp
    validates a head: token name, colon, no obs-fold, no control characters."""
    headers = []
    for line in block.split(b"\r\n"):
        match = _FIELD_LINE.fullmatch(line)
        if match is None:
            raise ProtocolError("malformed trailer field")
        headers.append((match[1].lower(), match[2]))
    return headers


@cython.cfunc
def _check_headers_to_send(headers: Headers) -> None:
    """What we write must parse back the same: lower-case token names and
    values of field characters without surrounding whitespace."""
    for name, value in headers:
        if not name or name.translate(None, _LOWER_TCHAR):
            raise LocalProtocolError(f"illegal header name {name!r} (must be a lower-case token)")
        if value.translate(None, _FIELD_CHAR) or (
            value and (value[0] in (32, 9) or value[-1] in (32, 9))
        ):
            raise LocalProtocolError(f"illegal header value {value!r}")


@cython.cfunc
def _write_fields(out: bytearray, headers: Headers) -> None:
    for name, value in headers:
        out += name
        out += b": "
        out += value
        out += b"\r\n"
    out += b"\r\n"


# --- llhttp's callbacks ------------------------------------------------------------------


@cython.final
@cython.cclass
class _Head:
    """Collects llhttp's callbacks for one message head."""

    headers: list[tuple[bytes, bytes]]
    lengths: list[bytes]
    codings: list[bytes]
    connection: list[bytes]
    upgrade: list[bytes]
    expect: list[bytes]
    hosts: int
    complete: bool

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.headers = []
        self.lengths = []
        self.codings = []
        self.connection = []
        self.upgrade = []
        self.expect = []
        self.hosts = 0
        self.complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        value = value.rstrip(b" \t")
        if name in _SPECIAL:
            if name == _CONTENT_LENGTH:
                self.lengths.append(value)
            elif name == _TRANSFER_ENCODING:
                value = value.lower()  # as h11 does: "Chunked" arrives as b"chunked"
                self.codings.append(value)
            elif name == _CONNECTION:
                self.connection.append(value)
            elif name == _HOST:
                self.hosts += 1
            elif name == _UPGRADE:
                self.upgrade.append(value)
            else:
                self.expect.append(value)
        self.headers.append((name, value))

    def on_message_complete(self) -> None:
        self.complete = True


# --- the codecs ----------------------------------------------------------------------------


@cython.cclass
class _FastCodec:
    """One side of an HTTP/1.1 connection; `FastServerCodec` and
    `FastClientCodec` fix the role."""

    _client: bool  # our role
    _limits: Limits
    # receive buffer: bytes when it holds a single received chunk (the common
    # case, parsed in place), bytearray once data had to be appended.
    _buf: object
    _pos: int
    _closed: bool
    _head: _Head
    _parser: object
    # connection state (h11's model)
    _cstate: int
    _sstate: int
    _keep_alive: bool
    _proposals: int
    _request_method: object  # bytes | None
    _their_version: object  # bytes | None
    _waiting_100: bool
    # their body
    _rframing: int
    _rleft: int
    _chunk_state: int
    # our body
    _wframing: int
    _wleft: int

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._buf = b""
        self._pos = 0
        self._closed = False
        self._head = _Head()
        self._parser = None
        self._cstate = IDLE
        self._sstate = IDLE
        self._keep_alive = True
        self._proposals = 0
        self._request_method = None
        self._their_version = None
        self._waiting_100 = False
        self._rframing = F_LENGTH
        self._rleft = 0
        self._chunk_state = C_SIZE
        self._wframing = F_LENGTH
        self._wleft = 0

    # --- state -------------------------------------------------------------------------

    @property
    def our_state(self) -> State:
        return _STATES[self._cstate if self._client else self._sstate]

    @property
    def their_state(self) -> State:
        return _STATES[self._sstate if self._client else self._cstate]

    @property
    def keep_alive(self) -> bool:
        return self._keep_alive

    @property
    def they_are_waiting_for_100_continue(self) -> bool:
        return not self._client and self._waiting_100

    @property
    def trailing_data(self) -> tuple[bytes, bool]:
        return bytes(self._buf[self._pos :]), self._closed  # type: ignore[index]

    @cython.cfunc
    def _process(self, client: bool, event: int) -> None:
        """Move `client`'s (else the server's) state on `event` (h11's
        ConnectionState.process_event); raises LocalProtocolError."""
        if client:
            new = _CLIENT_MOVES.get(_t(self._cstate, event))
            if new is None:
                raise LocalProtocolError(f"can't handle that event in client state {self._cstate}")
            self._cstate = new
        else:
            if event == E_RESPONSE:
                self._proposals = 0
            new = _SERVER_MOVES.get(_t(self._sstate, event))
            if new is None:
                raise LocalProtocolError(f"can't handle that event in server state {self._sstate}")
            self._sstate = new
        if event == E_REQUEST:
            new = _SERVER_MOVES.get(_t(self._sstate, E_REQUEST_SEEN))
            if new is None:
                raise LocalProtocolError("a request while the server is not idle")
            self._sstate = new
        self._settle()

    @cython.cfunc
    def _settle(self) -> None:
        """State-triggered transitions, to a fixed point."""
        while True:
            before_c = self._cstate
            before_s = self._sstate
            if self._proposals and self._cstate == DONE:
                self._cstate = MIGHT_SWITCH
            if not self._proposals and self._cstate == MIGHT_SWITCH:
                self._cstate = DONE
            if not self._keep_alive:
                if self._cstate == DONE:
                    self._cstate = MUST_CLOSE
                if self._sstate == DONE:
                    self._sstate = MUST_CLOSE
            joint = (self._cstate, self._sstate)
            self._cstate = _CLIENT_FOLLOWS.get(joint, self._cstate)
            self._sstate = _SERVER_FOLLOWS.get(joint, self._sstate)
            if self._cstate == before_c and self._sstate == before_s:
                return

    @cython.cfunc
    def _fail_theirs(self) -> None:
        if self._client:
            self._sstate = ERROR
        else:
            self._cstate = ERROR
        self._keep_alive = False
        self._settle()

    def start_next_cycle(self) -> None:
        if self._cstate != DONE or self._sstate != DONE:
            raise LocalProtocolError(
                f"not in a reusable state: {self.our_state.name}/{self.their_state.name}"
            )
        self._cstate = IDLE
        self._sstate = IDLE
        self._request_method = None

    # --- receiving -----------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if not data:
            self._closed = True
            return
        if type(data) is not bytes:
            data = bytes(data)
        if self._closed:
            raise RuntimeError("received close, then received more data?")
        buf = self._buf
        pos = self._pos
        if pos == len(buf):  # type: ignore[arg-type]
            self._buf = data
            self._pos = 0
        elif type(buf) is bytes:
            grown = bytearray(buf[pos:])  # type: ignore[index]
            grown += data
            self._buf = grown
            self._pos = 0
        else:
            if pos > 65536 and pos * 2 > len(buf):  # type: ignore[arg-type]
                del buf[:pos]  # type: ignore[attr-defined]
                self._pos = 0
            buf += data  # type: ignore[operator]

    def next_event(self) -> Event | _Sentinel:
        theirs = self._sstate if self._client else self._cstate
        if theirs == ERROR:
            raise ProtocolError("the peer already violated HTTP/1.1")
        try:
            if theirs == SEND_BODY:
                event = self._read_body()
            elif theirs == IDLE or (self._client and theirs == SEND_RESPONSE):
                event = self._read_head()
            elif theirs == MIGHT_SWITCH or theirs == SWITCHED:
                return PAUSED
            elif self._pos < len(self._buf):  # type: ignore[arg-type]
                # DONE: the next message waits for start_next_cycle();
                # MUST_CLOSE/CLOSED: nothing more is read.
                return PAUSED
            elif self._closed:
                self._process(not self._client, E_CLOSED)
                return ConnectionClosed()
            else:
                return NEED_DATA
        except ProtocolError:
            self._fail_theirs()
            raise
        except LocalProtocolError as exc:
            self._fail_theirs()
            raise ProtocolError(str(exc)) from None
        if event is None:
            if self._closed:
                self._fail_theirs()
                raise ProtocolError("peer closed the connection mid-message")
            return NEED_DATA
        return event  # type: ignore[no-any-return]

    # heads

    @cython.cfunc
    def _read_head(self) -> object:
        buf = self._buf
        pos = self._pos
        size = len(buf) - pos  # type: ignore[arg-type]
        if size == 0:
            if self._closed:
                self._process(not self._client, E_CLOSED)
                return ConnectionClosed()
            return None
        if buf[pos] < 33:  # type: ignore[index]
            raise ProtocolError("not an HTTP/1 message head")
        limit = self._limits.max_header_bytes
        end = buf.find(b"\r\n\r\n", pos, pos + limit)  # type: ignore[attr-defined]
        if _has_bare_lf(buf, pos, end if end >= 0 else pos + limit):
            raise ProtocolError("bare LF in a message head")
        if end < 0:
            if size >= limit:
                raise ProtocolError("header section too large", 431)
            return None
        end += 4
        if buf.count(b"\r\n", pos, end) - 2 > self._limits.max_header_count:  # type: ignore[attr-defined]
            raise ProtocolError("too many header fields", 431)
        line_end = buf.find(b"\r\n", pos)  # type: ignore[attr-defined]
        line = bytes(buf[pos:line_end])  # type: ignore[index]
        if self._client:
            status, reason, version = _check_status_line(line)
        else:
            method, target, version = _check_request_line(line, self._limits)
        head = self._head
        head.reset()
        parser = self._parser
        if parser is None:
            if self._client:
                parser = httptools.HttpResponseParser(head)
            else:
                parser = httptools.HttpRequestParser(head)
                # Transfer-Encoding is judged below (501), not by llhttp (400).
                parser.set_dangerous_leniencies(lenient_transfer_encoding=True)
        try:
            parser.feed_data(buf[pos:end] if pos or end != size else buf)  # type: ignore[index]
        except (httptools.HttpParserUpgrade, httptools.HttpParserError) as exc:
            # llhttp pauses after a complete CONNECT/Upgrade/101 message
            # (raising one or the other); a real error comes before the end.
            self._parser = None
            if not head.complete:
                raise ProtocolError(f"malformed message head: {exc}") from None
        else:
            # A parser that finished its message is ready for the next one.
            self._parser = parser if head.complete else None
        self._pos = end
        self._check_framing_fields(head)
        self._their_version = version
        if self._client:
            return self._received_response(status, reason, version, head)
        return self._received_request(method, target, version, head)

    @cython.cfunc
    def _check_framing_fields(self, head: _Head) -> None:
        """Content-Length (400), then Transfer-Encoding (501); llhttp already
        refused duplicate lengths and a length next to a coding."""
        if head.lengths:
            value = head.lengths[0]
            if (
                len(head.lengths) > 1
                or not value
                or len(value) > MAX_LENGTH_DIGITS
                or value.translate(None, _DIGIT)
            ):
                raise ProtocolError("malformed Content-Length")
            if head.codings:
                raise ProtocolError("both Content-Length and Transfer-Encoding")
        if head.codings and (len(head.codings) > 1 or head.codings[0] != b"chunked"):
            raise ProtocolError("only Transfer-Encoding: chunked is supported", 501)

    @cython.cfunc
    def _received_request(self, method: bytes, target: bytes, version: bytes, head: _Head) -> object:
        if head.hosts > 1 or (head.hosts == 0 and version == b"1.1"):
            raise ProtocolError("a request needs exactly one Host")
        if method == b"CONNECT":
            self._proposals |= P_CONNECT
        if head.upgrade and _comma_tokens(head.upgrade):
            self._proposals |= P_UPGRADE
        self._request_method = method
        if version != b"1.1" or (head.connection and b"close" in _comma_tokens(head.connection)):
            self._keep_alive = False
        self._waiting_100 = (
            version == b"1.1"
            and bool(head.expect)
            and b"100-continue" in _comma_tokens(head.expect)
        )
        self._process(True, E_REQUEST)
        self._set_read_framing(head, False)
        return Request(method, target, head.headers, version)

    @cython.cfunc
    def _received_response(self, status: int, reason: bytes, version: bytes, head: _Head) -> object:
        self._waiting_100 = False
        if status < 200:
            if status == 101:
                if not self._proposals & P_UPGRADE:
                    raise ProtocolError("101 Switching Protocols without an Upgrade")
                self._process(False, E_SWITCH_UPGRADE)
            else:
                self._process(False, E_INFORMATIONAL)
            return InformationalResponse(status, head.headers, version, reason)
        if version != b"1.1" or (head.connection and b"close" in _comma_tokens(head.connection)):
            self._keep_alive = False
        if self._proposals & P_CONNECT and 200 <= status < 300:
            self._process(False, E_SWITCH_CONNECT)
        else:
            self._process(False, E_RESPONSE)
            method = self._request_method
            if status == 204 or status == 304 or method == b"HEAD":
                self._rframing = F_LENGTH
                self._rleft = 0
            else:
                self._set_read_framing(head, True)
        return Response(status, head.headers, version, reason)

    @cython.cfunc
    def _set_read_framing(self, head: _Head, until_close_default: bool) -> None:
        self._chunk_state = C_SIZE
        if head.codings:
            self._rframing = F_CHUNKED
        elif head.lengths:
            self._rframing = F_LENGTH
            self._rleft = int(head.lengths[0])
        elif until_close_default:
            self._rframing = F_UNTIL_CLOSE
        else:
            self._rframing = F_LENGTH
            self._rleft = 0

    # bodies

    @cython.cfunc
    def _read_body(self) -> object:
        if not self._client:
            self._waiting_100 = False
        framing = self._rframing
        if framing == F_LENGTH:
            if self._rleft == 0:
                return self._end_of_message([])
            return self._take(self._rleft, True)
        if framing == F_CHUNKED:
            return self._read_chunked()
        data = self._take(len(self._buf) - self._pos, False)  # type: ignore[arg-type]
        if data is None and self._closed:
            return self._end_of_message([])
        return data

    @cython.cfunc
    def _take(self, most: int, counted: bool) -> object:
        buf = self._buf
        pos = self._pos
        size = len(buf) - pos  # type: ignore[arg-type]
        if size == 0:
            return None
        if most < size:
            size = most
        if pos == 0 and size == len(buf) and type(buf) is bytes:  # type: ignore[arg-type]
            data = buf
        else:
            data = bytes(buf[pos : pos + size])  # type: ignore[index]
        self._pos = pos + size
        if counted:
            self._rleft -= size
        return Data(data)  # type: ignore[arg-type]

    @cython.cfunc
    def _read_chunked(self) -> object:
        while True:
            state = self._chunk_state
            buf = self._buf
            pos = self._pos
            if state == C_DATA:
                data = self._take(self._rleft, True)
                if self._rleft == 0:
                    self._chunk_state = C_CRLF
                return data
            if state == C_CRLF:
                have = buf[pos : pos + 2]  # type: ignore[index]
                if have != b"\r\n"[: len(have)]:
                    raise ProtocolError("chunk data not followed by CRLF")
                if len(have) < 2:
                    return None
                self._pos = pos + 2
                self._chunk_state = C_SIZE
            elif state == C_SIZE:
                line_end = buf.find(b"\r\n", pos, pos + MAX_CHUNK_LINE + 2)  # type: ignore[attr-defined]
                if line_end < 0:
                    rest = buf[pos : pos + MAX_CHUNK_LINE + 2]  # type: ignore[index]
                    if len(rest) > MAX_CHUNK_LINE + 1 or b"\n" in rest:
                        raise ProtocolError("malformed chunk line")
                    return None
                line = bytes(buf[pos:line_end])  # type: ignore[index]
                if not line or b"\n" in line or b"\r" in line:
                    raise ProtocolError("malformed chunk line")
                self._rleft = _parse_chunk_size(line)
                self._pos = line_end + 2
                self._chunk_state = C_DATA if self._rleft else C_TRAILERS
            else:
                return self._read_trailers()

    @cython.cfunc
    def _read_trailers(self) -> object:
        buf = self._buf
        pos = self._pos
        size = len(buf) - pos  # type: ignore[arg-type]
        if buf[pos : pos + 2] == b"\r\n":  # type: ignore[index]
            self._pos = pos + 2
            return self._end_of_message([])
        limit = self._limits.max_header_bytes
        end = buf.find(b"\r\n\r\n", pos, pos + limit)  # type: ignore[attr-defined]
        if _has_bare_lf(buf, pos, end if end >= 0 else pos + limit):
            raise ProtocolError("bare LF in the trailer section")
        if end < 0:
            if size >= limit:
                raise ProtocolError("trailer section too large", 431)
            return None
        block = bytes(buf[pos:end])  # type: ignore[index]
        if block.count(b"\r\n") + 1 > self._limits.max_header_count:
            raise ProtocolError("too many trailer fields", 431)
        trailers = _parse_fields(block)
        for name, _ in trailers:
            if name == _CONTENT_LENGTH or name == _TRANSFER_ENCODING:
                raise ProtocolError("framing field in the trailer section")
        self._pos = end + 4
        return self._end_of_message(trailers)

    @cython.cfunc
    def _end_of_message(self, trailers: Headers) -> object:
        self._process(not self._client, E_END)
        return EndOfMessage(trailers)

    # --- sending -------------------------------------------------------------------------

    def send(self, event: Event) -> bytes:
        ours = self._cstate if self._client else self._sstate
        if ours == ERROR:
            raise LocalProtocolError("can't send data when our state is ERROR")
        try:
            kind = type(event)
            if kind is Data:
                return self._send_data(event.data)  # type: ignore[union-attr,no-any-return]
            if kind is EndOfMessage:
                return self._send_end(event.headers)  # type: ignore[union-attr,no-any-return]
            if kind is Response and not self._client:
                return self._send_response(event)  # type: ignore[no-any-return]
            if kind is Request and self._client:
                return self._send_request(event)  # type: ignore[no-any-return]
            if kind is InformationalResponse and not self._client:
                return self._send_informational(event)  # type: ignore[no-any-return]
            if kind is ConnectionClosed:
                self._process(self._client, E_CLOSED)
                return b""
            raise LocalProtocolError(f"can't send {kind.__name__} from this side")
        except LocalProtocolError:
            if self._client:
                self._cstate = ERROR
            else:
                self._sstate = ERROR
            self._keep_alive = False
            self._settle()
            raise

    @cython.cfunc
    def _send_data(self, data: bytes) -> bytes:
        self._process(self._client, E_DATA)
        framing = self._wframing
        if framing == F_LENGTH:
            self._wleft -= len(data)
            if self._wleft < 0:
                raise LocalProtocolError("too much data for the declared Content-Length")
            return data
        if framing == F_CHUNKED:
            if not data:
                return b""
            return b"%x\r\n%b\r\n" % (len(data), data)
        return data

    @cython.cfunc
    def _send_end(self, trailers: Headers) -> bytes:
        framing = self._wframing
        if trailers:
            if framing != F_CHUNKED:
                raise LocalProtocolError("trailers need a chunked body")
            _check_headers_to_send(trailers)
        if framing == F_LENGTH and self._wleft != 0:
            raise LocalProtocolError("too little data for the declared Content-Length")
        self._process(self._client, E_END)
        if framing != F_CHUNKED:
            return b""
        if not trailers:
            return b"0\r\n\r\n"
        out = bytearray(b"0\r\n")
        _write_fields(out, trailers)
        return bytes(out)

    @cython.cfunc
    def _send_request(self, request: Request) -> bytes:
        method = request.method
        target = request.target
        headers = request.headers
        if request.http_version != b"1.1":
            raise LocalProtocolError("only HTTP/1.1 requests are sent")
        if not method or method.translate(None, _TCHAR):
            raise LocalProtocolError(f"illegal method {method!r}")
        if not target or target.translate(None, _VCHAR):
            raise LocalProtocolError(f"illegal request-target {target!r}")
        _check_headers_to_send(headers)
        hosts = 0
        lengths = []
        codings = []
        upgrade = False
        connection = []
        for name, value in headers:
            if name in _SPECIAL:
                if name == _HOST:
                    hosts += 1
                elif name == _CONTENT_LENGTH:
                    lengths.append(value)
                elif name == _TRANSFER_ENCODING:
                    codings.append(value)
                elif name == _UPGRADE:
                    upgrade = upgrade or bool(_comma_tokens([value]))
                elif name == _CONNECTION:
                    connection.append(value)
        if hosts != 1:
            raise LocalProtocolError("a request needs exactly one Host")
        self._set_write_framing(lengths, codings, F_LENGTH)
        if method == b"CONNECT":
            self._proposals |= P_CONNECT
        if upgrade:
            self._proposals |= P_UPGRADE
        self._request_method = method
        if connection and b"close" in _comma_tokens(connection):
            self._keep_alive = False
        self._process(True, E_REQUEST)
        out = bytearray(b"%b %b HTTP/1.1\r\n" % (method, target))
        _write_fields(out, headers)
        return bytes(out)

    @cython.cfunc
    def _set_write_framing(self, lengths: list[bytes], codings: list[bytes], default: int) -> None:
        if lengths:
            value = lengths[0]
            if (
                len(lengths) > 1
                or not value
                or len(value) > MAX_LENGTH_DIGITS
                or value.translate(None, _DIGIT)
            ):
                raise LocalProtocolError("malformed Content-Length")
            if codings:
                raise LocalProtocolError("both Content-Length and Transfer-Encoding")
        if codings:
            if len(codings) > 1 or codings[0].lower() != b"chunked":
                raise LocalProtocolError("only Transfer-Encoding: chunked is supported")
            self._wframing = F_CHUNKED
        elif lengths:
            self._wframing = F_LENGTH
            self._wleft = int(lengths[0])
        else:
            self._wframing = default
            self._wleft = 0

    @cython.cfunc
    def _send_informational(self, response: InformationalResponse) -> bytes:
        status = response.status_code
        if not 100 <= status < 200:
            raise LocalProtocolError("an InformationalResponse needs a 1xx status")
        _check_headers_to_send(response.headers)
        self._check_version_and_reason(response.http_version, response.reason)
        if status == 101:
            if not self._proposals & P_UPGRADE:
                raise LocalProtocolError("101 Switching Protocols without an Upgrade")
            self._process(False, E_SWITCH_UPGRADE)
        else:
            self._process(False, E_INFORMATIONAL)
        self._waiting_100 = False
        return self._write_status(status, response.reason, response.headers)

    @cython.cfunc
    def _check_version_and_reason(self, version: bytes, reason: bytes) -> None:
        if version != b"1.1":
            raise LocalProtocolError("only HTTP/1.1 responses are sent")
        if reason.translate(None, _FIELD_CHAR):
            raise LocalProtocolError(f"illegal reason phrase {reason!r}")

    @cython.cfunc
    def _write_status(self, status: int, reason: bytes, headers: Headers) -> bytes:
        if not reason:
            reason = _REASONS.get(status, b"")
        out = bytearray(b"HTTP/1.1 %d %b\r\n" % (status, reason))
        _write_fields(out, headers)
        return bytes(out)

    @cython.cfunc
    def _send_response(self, response: Response) -> bytes:
        status = response.status_code
        headers = response.headers
        if not 200 <= status < 1000:
            raise LocalProtocolError("a Response needs a status of 200 to 999")
        _check_headers_to_send(headers)
        self._check_version_and_reason(response.http_version, response.reason)
        lengths = []
        codings = []
        connection = []
        for name, value in headers:
            if name == _CONTENT_LENGTH:
                lengths.append(value)
            elif name == _TRANSFER_ENCODING:
                codings.append(value)
            elif name == _CONNECTION:
                connection.append(value)
        self._set_write_framing(lengths, codings, F_UNTIL_CLOSE)
        method = self._request_method
        switch = bool(self._proposals & P_CONNECT) and 200 <= status < 300
        # h11's clean-up of what we send: a body without a length is chunked
        # for an HTTP/1.1 peer, and delimited by closing for an older one.
        need_close = False
        if not (status == 204 or status == 304 or switch or lengths):
            if self._their_version != b"1.1":
                if codings:
                    headers = [(n, v) for n, v in headers if n != _TRANSFER_ENCODING]
                self._wframing = F_UNTIL_CLOSE
                need_close = method != b"HEAD"
            elif not codings:
                headers = [*headers, (_TRANSFER_ENCODING, b"chunked")]
                self._wframing = F_CHUNKED
        if need_close or not self._keep_alive:
            self._keep_alive = False
            tokens = set(_comma_tokens(connection))
            tokens.discard(b"keep-alive")
            tokens.add(b"close")
            headers = [(n, v) for n, v in headers if n != _CONNECTION]
            headers.append((_CONNECTION, b", ".join(sorted(tokens))))
        elif connection and b"close" in _comma_tokens(connection):
            self._keep_alive = False
        self._process(False, E_SWITCH_CONNECT if switch else E_RESPONSE)
        self._waiting_100 = False
        if status == 204 or status == 304 or switch or method == b"HEAD":
            self._wframing = F_LENGTH
            self._wleft = 0
        return self._write_status(status, response.reason, headers)


@cython.final
@cython.cclass
class FastServerCodec(_FastCodec):
    """Server side: parses requests, serialises responses."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        super().__init__(limits)
        self._client = False


@cython.final
@cython.cclass
class FastClientCodec(_FastCodec):
    """Client side: serialises requests, parses responses."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        super().__init__(limits)
        self._client = True


def compiled() -> bool:
    """Whether this module is the Cython-compiled build."""
    return bool(cython.compiled)
