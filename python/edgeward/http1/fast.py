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

import re
from http import HTTPStatus
from typing import TYPE_CHECKING, Final

import httptools

if TYPE_CHECKING:  # the shim is typed; Cython's own `cython` module is not
    from edgeward.http1 import _cython_shim as cython
else:
    try:
        import cython
    except ModuleNotFoundError:  # pragma: no cover - Cython is a build-time tool
        from edgeward.http1 import _cython_shim as cython

from edgeward.http1.builds import load
from edgeward.http1.codec import DEFAULT_LIMITS, Limits
from edgeward.http1.events import (
    NEED_DATA,
    PAUSED,
    ConnectionClosed,
    Data,
    EndOfMessage,
    Event,
    FramingError,
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

if TYPE_CHECKING:
    from edgeward.http1.framing import body_framing
else:  # the compiled build when there is one (two to four calls per message)
    body_framing = load("framing").body_framing

# --- states, events and framings as small integers ------------------------------------
# (C constants when compiled: cython.declare)

IDLE = cython.declare(cython.int, 0)
SEND_RESPONSE = cython.declare(cython.int, 1)
SEND_BODY = cython.declare(cython.int, 2)
DONE = cython.declare(cython.int, 3)
MUST_CLOSE = cython.declare(cython.int, 4)
CLOSED = cython.declare(cython.int, 5)
MIGHT_SWITCH = cython.declare(cython.int, 6)
SWITCHED = cython.declare(cython.int, 7)
ERROR = cython.declare(cython.int, 8)
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

E_REQUEST = cython.declare(cython.int, 0)
E_INFORMATIONAL = cython.declare(cython.int, 1)
E_RESPONSE = cython.declare(cython.int, 2)
E_DATA = cython.declare(cython.int, 3)
E_END = cython.declare(cython.int, 4)
E_CLOSED = cython.declare(cython.int, 5)
E_SWITCH_UPGRADE = cython.declare(cython.int, 6)  # a 101 accepting an Upgrade
E_SWITCH_CONNECT = cython.declare(cython.int, 7)  # a 2xx accepting a CONNECT
E_REQUEST_SEEN = cython.declare(cython.int, 8)  # the server's side of a client's Request


@cython.inline
@cython.cfunc
def _t(state: cython.int, event: cython.int) -> cython.int:
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


def _table(moves: dict[int, int]) -> bytes:
    """The moves as a byte per (state, event) key, _NO_MOVE where there is none:
    indexed in C when compiled."""
    table = bytearray([_NO_MOVE]) * (16 * 16)
    for key, state in moves.items():
        table[key] = state
    return bytes(table)


_NO_MOVE = cython.declare(cython.int, 255)
_CLIENT_TABLE: Final = _table(_CLIENT_MOVES)
_SERVER_TABLE: Final = _table(_SERVER_MOVES)

# edgeward.http1.framing's LENGTH, CHUNKED, UNTIL_CLOSE (which decides them)
F_LENGTH = cython.declare(cython.int, 0)
F_CHUNKED = cython.declare(cython.int, 1)
F_UNTIL_CLOSE = cython.declare(cython.int, 2)

C_SIZE = cython.declare(cython.int, 0)  # chunked body: expecting a chunk-size line
C_DATA = cython.declare(cython.int, 1)
C_CRLF = cython.declare(cython.int, 2)
C_TRAILERS = cython.declare(cython.int, 3)

P_CONNECT = cython.declare(cython.int, 1)  # pending switch proposals (bit set)
P_UPGRADE = cython.declare(cython.int, 2)

# --- byte classes and small grammars ---------------------------------------------------

_TCHAR: Final = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_LOWER_TCHAR: Final = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
_VCHAR: Final = bytes(range(0x21, 0x7F))
_OBS_TEXT: Final = bytes(range(0x80, 0x100))
_FIELD_CHAR: Final = b"\t " + _VCHAR + _OBS_TEXT  # what a field value may contain
_HEXDIG: Final = b"0123456789abcdefABCDEF"
_DIGIT: Final = b"0123456789"
_HOST_CHAR: Final = (  # host:port of a CONNECT target, the authority without userinfo
    b"-._~%!$&'()*+,;=:[]0123456789" + bytes(range(65, 91)) + bytes(range(97, 123))
)
_AUTHORITY_CHAR: Final = _HOST_CHAR + b"@"


def _byte_map(allowed: bytes) -> bytes:
    table = bytearray(256)
    for byte in allowed:
        table[byte] = 1
    return bytes(table)


# (allowed bytes, their 256-byte map) for `_only`
_TCHARS: Final = (_TCHAR, _byte_map(_TCHAR))
_NAME_CHARS: Final = (_LOWER_TCHAR, _byte_map(_LOWER_TCHAR))
_VCHARS: Final = (_VCHAR, _byte_map(_VCHAR))
_FIELD_CHARS: Final = (_FIELD_CHAR, _byte_map(_FIELD_CHAR))
_DIGITS: Final = (_DIGIT, _byte_map(_DIGIT))
_HEXDIGS: Final = (_HEXDIG, _byte_map(_HEXDIG))


@cython.cfunc
def _only(data: bytes, chars: tuple[bytes, bytes]) -> cython.bint:
    """Whether every byte of `data` is one of `chars` (a C loop over the map
    when compiled, `bytes.translate` in pure Python)."""
    if not cython.compiled:
        return not data.translate(None, chars[0])
    table: cython.p_uchar = chars[1]  # 256 entries: any byte indexes it
    p: cython.p_uchar = data
    n: cython.Py_ssize_t = len(data)
    i: cython.Py_ssize_t = 0
    while i + 4 <= n:  # four bytes per test: one branch instead of four
        if not (table[p[i]] & table[p[i + 1]] & table[p[i + 2]] & table[p[i + 3]]):
            return False
        i += 4
    while i < n:
        if not table[p[i]]:
            return False
        i += 1
    return True


@cython.cfunc
@cython.inline
def _find(
    data: bytes, byte: cython.uchar, start: cython.Py_ssize_t, stop: cython.Py_ssize_t
) -> cython.Py_ssize_t:
    """Index of the first `byte` in data[start:stop], or -1 (`bytes.find`
    without its argument parsing when compiled: libc's memchr, which
    `_fast.pyx` cimports). Callers keep 0 <= start <= stop <= len(data)."""
    if not cython.compiled:
        return data.find(byte, start, stop)
    p: cython.p_uchar = data
    found: cython.p_uchar = cython.cast(
        cython.p_uchar,
        memchr(p + start, byte, stop - start),  # type: ignore[name-defined,operator] # noqa: F821
    )
    if not found:
        return -1
    return found - p  # type: ignore[operator, no-any-return]


@cython.cfunc
@cython.inline
def _slice(data: bytes, start: cython.Py_ssize_t, stop: cython.Py_ssize_t) -> bytes:
    """data[start:stop] (one allocation when compiled). Callers keep
    0 <= start <= stop <= len(data)."""
    p: cython.p_uchar = data
    return p[start:stop]


_FIELD_LINE: Final = re.compile(
    rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*"
    rb"((?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?)[ \t]*"
)
_CHUNK_EXT_ITEM: Final = (
    rb"[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:[ \t]*=[ \t]*(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
    rb'|"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"))?'
)
# chunk-ext (RFC 9112 §7.1.1) right after the size: ";" directly after the digits.
_CHUNK_EXT: Final = re.compile(
    rb";" + _CHUNK_EXT_ITEM + rb"(?:[ \t]*;" + _CHUNK_EXT_ITEM + rb")*[ \t]*"
)
MAX_CHUNK_LINE = cython.declare(cython.Py_ssize_t, 4096)
MAX_CHUNK_SIZE: Final = 2**63 - 1

_CONTENT_LENGTH: Final = b"content-length"
_TRANSFER_ENCODING: Final = b"transfer-encoding"
_CONNECTION: Final = b"connection"
_HOST: Final = b"host"
_UPGRADE: Final = b"upgrade"
_EXPECT: Final = b"expect"
_SPECIAL: Final = frozenset(
    (_CONTENT_LENGTH, _TRANSFER_ENCODING, _CONNECTION, _HOST, _UPGRADE, _EXPECT)
)
_NAMES: Final = {
    name.title(): name
    for name in (
        *_SPECIAL,
        *(
            b"accept accept-encoding accept-language accept-ranges age authorization "
            b"cache-control content-encoding content-type cookie date etag expires "
            b"last-modified location origin pragma referer server set-cookie "
            b"user-agent vary via x-forwarded-for x-forwarded-host x-forwarded-proto "
            b"x-real-ip x-request-id".split()
        ),
    )
}
"""Field names as commonly sent (Content-Type), to their lower-case form."""
_NAMES.update({name: name for name in _NAMES.values()})
_REASONS: Final = {s.value: s.phrase.encode("ascii") for s in HTTPStatus}
_STATUS_LINES: Final = {code: b"HTTP/1.1 %d %b\r\n" % (code, r) for code, r in _REASONS.items()}


@cython.cfunc
def _has_bare_lf(
    buf: bytes | bytearray, start: cython.Py_ssize_t, end: cython.Py_ssize_t
) -> cython.bint:
    """Whether buf[start:end] holds an LF not preceded by a CR (in range)."""
    return buf.count(b"\n", start, end) != buf.count(b"\r\n", start, end)


def _comma_tokens(values: list[bytes]) -> list[bytes]:
    """The lower-cased, comma-separated tokens of list-valued fields."""
    out = []
    for value in values:
        for item in value.lower().split(b","):
            token = item.strip(b" \t")
            if token:
                out.append(token)
    return out


@cython.cfunc
def _check_request_line(
    line: bytes, max_target_length: cython.Py_ssize_t
) -> tuple[bytes, bytes, bytes]:
    """method SP request-target SP HTTP-version, checked in the order of
    `rules.check_request_line`: syntax (400), version (505), method (501),
    target form (400), target length (414)."""
    size: cython.Py_ssize_t = len(line)
    sp1: cython.Py_ssize_t = _find(line, 32, 0, size)
    sp2: cython.Py_ssize_t = _find(line, 32, sp1 + 1, size) if sp1 >= 0 else -1
    if sp1 <= 0 or sp2 <= sp1 + 1:
        raise ProtocolError("malformed request line")
    method: bytes = _slice(line, 0, sp1)
    target: bytes = _slice(line, sp1 + 1, sp2)
    known = method == b"GET" or method in KNOWN_METHODS  # known methods are tokens
    v: cython.Py_ssize_t = sp2 + 1  # HTTP/d.d
    if (
        not (known or _only(method, _TCHARS))
        or not _only(target, _VCHARS)
        or size - v != 8
        or line[v] != 72  # H
        or line[v + 1] != 84  # T
        or line[v + 2] != 84  # T
        or line[v + 3] != 80  # P
        or line[v + 4] != 47  # /
        or line[v + 6] != 46  # .
        or not (48 <= line[v + 5] <= 57 and 48 <= line[v + 7] <= 57)
    ):
        raise ProtocolError("malformed request line")
    if line[v + 5] != 49 or (line[v + 7] != 49 and line[v + 7] != 48):
        raise ProtocolError("HTTP version not supported", 505)
    version = b"1.1" if line[v + 7] == 49 else b"1.0"
    if not known:
        raise ProtocolError("unknown method", 501)
    if target[0] == 47:  # "/": origin-form, the common case
        form_ok = method != b"CONNECT"
    elif method == b"CONNECT":
        colon = target.rfind(b":")
        form_ok = (
            0 <= colon < len(target) - 1
            and _only(target[colon + 1 :], _DIGITS)
            and not target[:colon].translate(None, _HOST_CHAR)
        )
    elif target == b"*":
        form_ok = method == b"OPTIONS"
    else:
        form_ok = _is_absolute_form(target)
    if not form_ok:
        raise ProtocolError("malformed request-target")
    if len(target) > max_target_length:
        raise ProtocolError("request-target too long", 414)
    return method, target, version


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
    """HTTP-version SP 3DIGIT [SP reason]: syntax (400), then version (505);
    the status is 100-999."""
    size: cython.Py_ssize_t = len(line)
    reason: bytes = line[13:]
    if (
        size < 12
        or line[0] != 72  # H
        or line[1] != 84  # T
        or line[2] != 84  # T
        or line[3] != 80  # P
        or line[4] != 47  # /
        or line[6] != 46  # "."
        or line[8] != 32  # " "
        or not (48 <= line[5] <= 57 and 48 <= line[7] <= 57)
        or not (49 <= line[9] <= 57 and 48 <= line[10] <= 57 and 48 <= line[11] <= 57)
        or (size > 12 and line[12] != 32)
        or not _only(reason, _FIELD_CHARS)
    ):
        raise ProtocolError("malformed status line")  # (status 0xx: a status below 100)
    if line[5] != 49 or (line[7] != 49 and line[7] != 48):
        raise ProtocolError("HTTP version not supported", 505)
    status: cython.int = (line[9] - 48) * 100 + (line[10] - 48) * 10 + (line[11] - 48)
    return status, reason, (b"1.1" if line[7] == 49 else b"1.0")


@cython.cfunc
def _parse_chunk_size(line: bytes) -> int:
    """chunk-size [chunk-ext] [OWS] (the line without its CRLF): 1-16 hex
    digits below 2**63; extensions must follow RFC 9112 §7.1.1 and are dropped."""
    semi = line.find(b";")
    if semi >= 0:
        size = line[:semi]
        if _CHUNK_EXT.fullmatch(line, semi) is None:
            raise ProtocolError("malformed chunk extension")
    else:
        size = line.rstrip(b" \t")
    if not size or len(size) > 16 or not _only(size, _HEXDIGS):
        raise ProtocolError("malformed chunk size")
    value = int(size, 16)
    if value > MAX_CHUNK_SIZE:
        raise ProtocolError("chunk size too large")
    return value


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
def _fields(first_line: bytes, headers: Headers) -> bytes:
    """A head on the wire. What we write must parse back the same, so names
    must be lower-case tokens and values field characters without
    surrounding whitespace (LocalProtocolError)."""
    parts = [first_line]
    name: bytes
    value: bytes
    last: cython.Py_ssize_t
    for name, value in headers:
        if not name or not _only(name, _NAME_CHARS):
            raise LocalProtocolError(f"illegal header name {name!r} (must be a lower-case token)")
        last = len(value) - 1
        if last >= 0 and (
            not _only(value, _FIELD_CHARS)
            or value[0] == 32
            or value[0] == 9
            or value[last] == 32
            or value[last] == 9
        ):
            raise LocalProtocolError(f"illegal header value {value!r}")
        parts.append(name)
        parts.append(b": ")
        parts.append(value)
        parts.append(b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


@cython.cfunc
def _status_head(version: bytes, status: int, reason: bytes, headers: Headers) -> bytes:
    if version != b"1.1":
        raise LocalProtocolError("only HTTP/1.1 responses are sent")
    if not reason or reason == _REASONS.get(status):
        line = _STATUS_LINES.get(status)
        if line is not None:
            return _fields(line, headers)
        reason = b""
    elif not _only(reason, _FIELD_CHARS):
        raise LocalProtocolError(f"illegal reason phrase {reason!r}")
    return _fields(b"HTTP/1.1 %d %b\r\n" % (status, reason), headers)


@cython.cfunc
def _has_close(values: list[bytes]) -> cython.bint:
    """Whether Connection field values hold the "close" option."""
    value: bytes
    for value in values:
        if value == b"keep-alive":  # what servers and most clients send
            continue
        if b"close" in value.lower():
            return b"close" in _comma_tokens(values)
    return False


# --- llhttp's callbacks ------------------------------------------------------------------


@cython.final
@cython.cclass
class _Head:
    """What llhttp found in one message head, through its callbacks: the
    target or reason, the field lines, and the values of the fields that
    decide framing and connection handling (None: no such field). llhttp is
    the one parser of heads: nothing here re-reads the head's bytes."""

    headers: list[tuple[bytes, bytes]]
    lengths: list[bytes] | None
    codings: list[bytes] | None
    connection: list[bytes] | None
    upgrade: list[bytes] | None
    expect: list[bytes] | None
    hosts: cython.Py_ssize_t
    url: bytes  # request-target (requests)
    reason: bytes  # reason phrase (responses)
    complete: cython.bint  # llhttp's on_headers_complete came

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.headers = []
        self.lengths = self.codings = self.connection = self.upgrade = self.expect = None
        self.hosts = 0
        self.url = self.reason = b""
        self.complete = False

    # llhttp's callbacks (through httptools); each head is fed in one piece

    @cython.binding(False)  # a plain C method: called per field line
    def on_url(self, url: bytes) -> None:
        self.url += url

    @cython.binding(False)  # a plain C method: called per field line
    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    @cython.binding(False)  # a plain C method: called per field line
    def on_header(self, name: bytes, value: bytes) -> None:
        """A field line: the name as sent (lower-cased here, the common ones
        without a copy), the value without its leading whitespace; llhttp
        leaves the trailing whitespace, which is not part of it (RFC 9112 §5)."""
        names: dict[bytes, bytes] = _NAMES  # typed: a C dict lookup, not a method call
        lowered = names.get(name)
        if lowered is None:
            lowered = name.lower()
        last: cython.Py_ssize_t = len(value) - 1
        if last >= 0 and (value[last] == 32 or value[last] == 9):
            value = value.rstrip(b" \t")
        self.add(lowered, value)

    @cython.binding(False)  # a plain C method: called per field line
    def on_headers_complete(self) -> None:
        self.complete = True

    @cython.cfunc
    def add(self, name: bytes, value: bytes) -> None:
        if name in _SPECIAL:
            if name == _CONTENT_LENGTH:
                self.lengths = _appended(self.lengths, value)
            elif name == _TRANSFER_ENCODING:
                value = value.lower()  # as h11 does: "Chunked" arrives as b"chunked"
                self.codings = _appended(self.codings, value)
            elif name == _CONNECTION:
                self.connection = _appended(self.connection, value)
            elif name == _HOST:
                self.hosts += 1
            elif name == _UPGRADE:
                self.upgrade = _appended(self.upgrade, value)
            else:
                self.expect = _appended(self.expect, value)
        self.headers.append((name, value))


@cython.final
@cython.cclass
class _Callbacks:
    """What httptools is given as its protocol: `_Head`'s callbacks, bound
    once. httptools looks them up (getattr) for every new parser; here that
    is an attribute read, not a new method object each time. (Held apart
    from `_Head` so that nothing makes a reference cycle.)"""

    on_url: object = cython.declare(object, visibility="public")
    on_status: object = cython.declare(object, visibility="public")
    on_header: object = cython.declare(object, visibility="public")
    on_headers_complete: object = cython.declare(object, visibility="public")

    def __init__(self, head: _Head) -> None:
        self.on_url = head.on_url
        self.on_status = head.on_status
        self.on_header = head.on_header
        self.on_headers_complete = head.on_headers_complete


@cython.cfunc
def _appended(values: list[bytes] | None, value: bytes) -> list[bytes]:
    if values is None:
        return [value]
    values.append(value)
    return values


# --- the codecs ----------------------------------------------------------------------------


@cython.cclass
class _FastCodec:
    """One side of an HTTP/1.1 connection; `FastServerCodec` and
    `FastClientCodec` fix the role."""

    _client: cython.bint  # our role
    _limits: Limits
    _max_header_bytes: cython.Py_ssize_t
    _max_header_count: cython.Py_ssize_t
    _max_target_length: cython.Py_ssize_t
    _lines: cython.Py_ssize_t  # set by _find_head
    _line_end: cython.Py_ssize_t
    # receive buffer: bytes when it holds a single received chunk (the common
    # case, parsed in place), bytearray once data had to be appended.
    _buf: bytes | bytearray
    _pos: cython.Py_ssize_t
    _closed: cython.bint
    _head: _Head
    _callbacks: _Callbacks
    # connection state (h11's model)
    _cstate: cython.int
    _sstate: cython.int
    _keep_alive: cython.bint
    _proposals: cython.int
    _request_method: bytes | None
    _their_version: bytes | None
    _waiting_100: cython.bint
    # their body
    _rframing: cython.int
    _rleft: cython.Py_ssize_t
    _chunk_state: cython.int
    # our body
    _wframing: cython.int
    _wleft: cython.Py_ssize_t

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._max_header_bytes = limits.max_header_bytes
        self._max_header_count = limits.max_header_count
        self._max_target_length = limits.max_target_length
        self._lines = self._line_end = 0
        self._buf = b""
        self._pos = 0
        self._closed = False
        self._head = _Head()
        self._callbacks = _Callbacks(self._head)
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
        return bytes(self._buf[self._pos :]), self._closed

    @cython.cfunc
    def _process(self, client: cython.bint, event: cython.int) -> None:
        """Move `client`'s (else the server's) state on `event` (h11's
        ConnectionState.process_event); raises LocalProtocolError."""
        moves: bytes
        new: cython.int
        if client:
            moves = _CLIENT_TABLE
            new = moves[_t(self._cstate, event)]
            if new == _NO_MOVE:
                raise LocalProtocolError(f"can't handle that event in client state {self._cstate}")
            self._cstate = new
        else:
            if event == E_RESPONSE:
                self._proposals = 0
            moves = _SERVER_TABLE
            new = moves[_t(self._sstate, event)]
            if new == _NO_MOVE:
                raise LocalProtocolError(f"can't handle that event in server state {self._sstate}")
            self._sstate = new
        if event == E_REQUEST:
            moves = _SERVER_TABLE
            new = moves[_t(self._sstate, E_REQUEST_SEEN)]
            if new == _NO_MOVE:
                raise LocalProtocolError("a request while the server is not idle")
            self._sstate = new
        self._settle()

    @cython.cfunc
    def _settle(self) -> None:
        """State-triggered transitions of h11's ConnectionState, to a fixed point."""
        while True:
            c = self._cstate
            srv = self._sstate
            if self._proposals and c == DONE:
                c = MIGHT_SWITCH
            elif not self._proposals and c == MIGHT_SWITCH:
                c = DONE
            if not self._keep_alive:
                if c == DONE:
                    c = MUST_CLOSE
                if srv == DONE:
                    srv = MUST_CLOSE
            if c == MIGHT_SWITCH and srv == SWITCHED:
                c = SWITCHED
            elif (c in (DONE, IDLE) and srv == CLOSED) or (c == DONE and srv == ERROR):
                c = MUST_CLOSE
            if (srv in (DONE, IDLE) and c == CLOSED) or (srv == DONE and c == ERROR):
                srv = MUST_CLOSE
            if c == self._cstate and srv == self._sstate:
                return
            self._cstate = c
            self._sstate = srv

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
        if self._client and self._sstate == DONE:
            self._stray_bytes()  # the response is complete: nothing may follow it
        buf = self._buf
        pos = self._pos
        if pos == len(buf):
            self._buf = data
            self._pos = 0
        elif isinstance(buf, bytes):
            grown = bytearray(buf[pos:])
            grown += data
            self._buf = grown
            self._pos = 0
        else:
            if pos > 65536 and pos * 2 > len(buf):
                del buf[:pos]
                self._pos = 0
            buf += data

    def next_event(self) -> Event | _Sentinel:
        theirs = self._sstate if self._client else self._cstate
        if theirs == ERROR:
            raise ProtocolError("the peer already violated HTTP/1.1")
        try:
            if theirs == SEND_BODY:
                event = self._read_body()
            elif theirs == IDLE or (self._client and theirs == SEND_RESPONSE):
                event = self._read_head()
            elif theirs in (MIGHT_SWITCH, SWITCHED):
                return PAUSED
            elif self._pos < len(self._buf):
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
        return event

    # heads

    @cython.cfunc
    def _find_head(
        self, data: bytes, start: cython.Py_ssize_t, stop: cython.Py_ssize_t
    ) -> cython.Py_ssize_t:
        """Where the head starting at data[start] ends: the index just past
        the CRLF CRLF within data[start:stop], or -1 when it is not there
        (yet). Raises ProtocolError on a bare LF before that end. Sets
        `_lines` (the CRLFs of the head) and `_line_end` (where its first
        line ends). One pass in C when compiled; find and count in Python."""
        if not cython.compiled:
            end = data.find(b"\r\n\r\n", start, stop)
            if _has_bare_lf(data, start, end if end >= 0 else stop):
                raise ProtocolError("bare LF in a message head")
            if end < 0:
                return -1
            self._lines = data.count(b"\r\n", start, end + 4)
            self._line_end = data.find(b"\r\n", start)
            return end + 4
        p: cython.p_uchar = data
        lines: cython.Py_ssize_t = 0
        line_end: cython.Py_ssize_t = -1
        stop = min(stop, len(data))
        i: cython.Py_ssize_t = start
        while i < stop:
            i = _find(data, 10, i, stop)  # from one LF to the next
            if i < 0:
                return -1
            if i == start or p[i - 1] != 13:
                raise ProtocolError("bare LF in a message head")
            if line_end < 0:
                line_end = i - 1
            lines += 1
            if i - start >= 3 and p[i - 2] == 10:  # p[i - 3] is the CR before it
                self._lines = lines
                self._line_end = line_end
                return i + 1
            i += 1
        return -1

    @cython.cfunc
    def _read_head(self) -> Event | None:
        buf = self._buf
        pos = self._pos
        size = len(buf) - pos
        if size == 0:
            if self._closed:
                self._process(not self._client, E_CLOSED)
                return ConnectionClosed()
            return None
        if buf[pos] < 33:
            raise ProtocolError("not an HTTP/1 message head")
        limit: cython.Py_ssize_t = self._max_header_bytes
        stop: cython.Py_ssize_t = min(size, limit)
        # the common case: one read holds the whole head; else scan a copy
        data: bytes = buf if type(buf) is bytes else bytes(buf[pos : pos + stop])
        start: cython.Py_ssize_t = pos if type(buf) is bytes else 0
        end: cython.Py_ssize_t = self._find_head(data, start, start + stop)
        if end < 0:
            if size >= limit:
                raise ProtocolError("header section too large", 431)
            return None
        if self._lines - 2 > self._max_header_count:
            raise ProtocolError("too many header fields", 431)
        line_end: cython.Py_ssize_t = self._line_end
        line = _slice(data, start, line_end)
        if self._client:
            status, reason, version = _check_status_line(line)
        else:
            method, target, version = _check_request_line(line, self._max_target_length)
        head = self._head
        head.reset()
        # A fresh parser per head (cheap): llhttp's own idea of what may
        # follow (after "close", HTTP/1.0, a 1xx, HEAD) is not ours.
        parser: httptools.HttpRequestParser | httptools.HttpResponseParser
        if self._client:
            parser = httptools.HttpResponseParser(self._callbacks)
        else:
            parser = httptools.HttpRequestParser(self._callbacks)
            # Transfer-Encoding is judged below (501), not by llhttp (400).
            parser.set_dangerous_leniencies(None, None, None, True)
        try:
            parser.feed_data(data if start == 0 and end == len(data) else data[start:end])
        except (httptools.HttpParserUpgrade, httptools.HttpParserError) as exc:
            # llhttp pauses after a complete CONNECT/Upgrade/101 message
            # (raising one or the other); a real error comes before the end.
            if not head.complete:
                raise ProtocolError(f"malformed message head: {exc}") from None
        # llhttp's head must be the one whose end and lines `_find_head`
        # counted, and its target or reason the one our rules accepted in the
        # first line (so its method or status is ours too, the bytes before):
        # every value used from here on is llhttp's.
        if not head.complete or len(head.headers) != self._lines - 2:
            raise ProtocolError("malformed message head")
        if self._client:
            if head.reason != reason:
                raise ProtocolError("malformed status line")
            reason = head.reason
        else:
            if head.url != target:
                raise ProtocolError("malformed request line")
            target = head.url
        self._pos = end - start + pos
        # Content-Length (400), then Transfer-Encoding (501); llhttp already
        # refused duplicate lengths and a length next to a coding.
        try:
            if self._client:
                framing = body_framing(head.lengths, head.codings, self._request_method, status)
            else:
                framing = body_framing(head.lengths, head.codings)
        except FramingError as exc:
            raise ProtocolError(str(exc), exc.status) from None
        self._their_version = version
        if self._client:
            return self._received_response(status, reason, version, head, framing)
        return self._received_request(method, target, version, head, framing)

    @cython.cfunc
    def _received_request(
        self, method: bytes, target: bytes, version: bytes, head: _Head, framing: tuple[int, int]
    ) -> Event | None:
        if head.hosts > 1 or (head.hosts == 0 and version == b"1.1"):
            raise ProtocolError("a request needs exactly one Host")
        if method == b"CONNECT":
            self._proposals |= P_CONNECT
        if head.upgrade and _comma_tokens(head.upgrade):
            self._proposals |= P_UPGRADE
        self._request_method = method
        if version != b"1.1" or (head.connection and _has_close(head.connection)):
            self._keep_alive = False
        self._waiting_100 = (
            version == b"1.1"
            and head.expect is not None
            and b"100-continue" in _comma_tokens(head.expect)
        )
        self._process(True, E_REQUEST)
        self._set_read_framing(framing)
        return Request(method, target, head.headers, version)

    @cython.cfunc
    def _received_response(
        self, status: int, reason: bytes, version: bytes, head: _Head, framing: tuple[int, int]
    ) -> Event | None:
        self._waiting_100 = False
        if status < 200:
            if status == 101:
                if not self._proposals & P_UPGRADE:
                    raise ProtocolError("101 Switching Protocols without an Upgrade")
                self._process(False, E_SWITCH_UPGRADE)
            else:
                self._process(False, E_INFORMATIONAL)
            return InformationalResponse(status, head.headers, version, reason)
        if version != b"1.1" or (head.connection and _has_close(head.connection)):
            self._keep_alive = False
        if self._proposals & P_CONNECT and 200 <= status < 300:
            self._process(False, E_SWITCH_CONNECT)
        else:
            self._process(False, E_RESPONSE)
            self._set_read_framing(framing)
        return Response(status, head.headers, version, reason)

    @cython.cfunc
    def _set_read_framing(self, framing: tuple[int, int]) -> None:
        self._chunk_state = C_SIZE
        self._rframing = framing[0]
        self._rleft = framing[1]

    # bodies

    @cython.cfunc
    def _read_body(self) -> Event | None:
        if not self._client:
            self._waiting_100 = False
        framing = self._rframing
        if framing == F_LENGTH:
            if self._rleft == 0:
                return self._end_of_message([])
            return self._take(self._rleft, True)
        if framing == F_CHUNKED:
            return self._read_chunked()
        data = self._take(len(self._buf) - self._pos, False)
        if data is None and self._closed:
            return self._end_of_message([])
        return data

    @cython.cfunc
    def _take(self, most: cython.Py_ssize_t, counted: cython.bint) -> Data | None:
        buf = self._buf
        pos = self._pos
        size = len(buf) - pos
        if size == 0:
            return None
        size = min(size, most)
        if pos == 0 and size == len(buf) and isinstance(buf, bytes):
            data = buf
        else:
            data = bytes(buf[pos : pos + size])
        self._pos = pos + size
        if counted:
            self._rleft -= size
        return Data(data)

    @cython.cfunc
    def _read_chunked(self) -> Event | None:
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
                have = buf[pos : pos + 2]
                if have != b"\r\n"[: len(have)]:
                    raise ProtocolError("chunk data not followed by CRLF")
                if len(have) < 2:
                    return None
                self._pos = pos + 2
                self._chunk_state = C_SIZE
            elif state == C_SIZE:
                line_end = buf.find(b"\r\n", pos, pos + MAX_CHUNK_LINE + 2)
                if line_end < 0:
                    rest = buf[pos : pos + MAX_CHUNK_LINE + 2]
                    if len(rest) > MAX_CHUNK_LINE + 1 or b"\n" in rest:
                        raise ProtocolError("malformed chunk line")
                    return None
                line = bytes(buf[pos:line_end])
                if not line or b"\n" in line or b"\r" in line:
                    raise ProtocolError("malformed chunk line")
                self._rleft = _parse_chunk_size(line)
                self._pos = line_end + 2
                self._chunk_state = C_DATA if self._rleft else C_TRAILERS
            else:
                return self._read_trailers()

    @cython.cfunc
    def _read_trailers(self) -> Event | None:
        buf = self._buf
        pos = self._pos
        size = len(buf) - pos
        if buf[pos : pos + 2] == b"\r\n":
            self._pos = pos + 2
            return self._end_of_message([])
        limit = self._max_header_bytes
        end = buf.find(b"\r\n\r\n", pos, pos + limit)
        if _has_bare_lf(buf, pos, end if end >= 0 else pos + limit):
            raise ProtocolError("bare LF in the trailer section")
        if end < 0:
            if size >= limit:
                raise ProtocolError("trailer section too large", 431)
            return None
        block = bytes(buf[pos:end])
        if block.count(b"\r\n") + 1 > self._max_header_count:
            raise ProtocolError("too many trailer fields", 431)
        trailers = _parse_fields(block)
        for name, _ in trailers:
            if name in (b"content-length", b"transfer-encoding"):
                raise ProtocolError("framing field in the trailer section")
        self._pos = end + 4
        return self._end_of_message(trailers)

    @cython.cfunc
    def _end_of_message(self, trailers: Headers) -> EndOfMessage:
        self._process(not self._client, E_END)
        if self._client and self._pos < len(self._buf):
            self._stray_bytes()
        return EndOfMessage(trailers)

    @cython.cfunc
    def _stray_bytes(self) -> None:
        """(client) The server sent bytes after a complete response, before
        our next request: a second response injected into the connection, or
        a body to a HEAD. Whatever they are, they must never be read as the
        answer to the next request, so the connection must close (keep-alive
        ends; `start_next_cycle` refuses)."""
        self._keep_alive = False
        self._settle()

    # --- sending -------------------------------------------------------------------------

    def send(self, event: Event) -> bytes:
        ours = self._cstate if self._client else self._sstate
        if ours == ERROR:
            raise LocalProtocolError("can't send data when our state is ERROR")
        try:
            if isinstance(event, Data):
                return self._send_data(event.data)
            if isinstance(event, EndOfMessage):
                return self._send_end(event.headers)
            if isinstance(event, Response) and not self._client:
                return self._send_response(event)
            if isinstance(event, Request) and self._client:
                return self._send_request(event)
            if isinstance(event, InformationalResponse) and not self._client:
                return self._send_informational(event)
            if isinstance(event, ConnectionClosed):
                self._process(self._client, E_CLOSED)
                return b""
            raise LocalProtocolError(f"can't send {type(event).__name__} from this side")
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
        if trailers and framing != F_CHUNKED:
            raise LocalProtocolError("trailers need a chunked body")
        if framing == F_LENGTH and self._wleft != 0:
            raise LocalProtocolError("too little data for the declared Content-Length")
        self._process(self._client, E_END)
        if framing != F_CHUNKED:
            return b""
        if not trailers:
            return b"0\r\n\r\n"
        return _fields(b"0\r\n", trailers)

    @cython.cfunc
    def _send_request(self, request: Request) -> bytes:
        method = request.method
        target = request.target
        headers = request.headers
        if request.http_version != b"1.1":
            raise LocalProtocolError("only HTTP/1.1 requests are sent")
        if not method or not _only(method, _TCHARS):
            raise LocalProtocolError(f"illegal method {method!r}")
        if not target or not _only(target, _VCHARS):
            raise LocalProtocolError(f"illegal request-target {target!r}")
        hosts = 0
        lengths = []
        codings = []
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
                    if _comma_tokens([value]):
                        self._proposals |= P_UPGRADE
                elif name == _CONNECTION:
                    connection.append(value)
        if hosts != 1:
            raise LocalProtocolError("a request needs exactly one Host")
        self._set_write_framing(lengths, codings, None, 0)
        if method == b"CONNECT":
            self._proposals |= P_CONNECT
        self._request_method = method
        if connection and _has_close(connection):
            self._keep_alive = False
        self._process(True, E_REQUEST)
        return _fields(b"%b %b HTTP/1.1\r\n" % (method, target), headers)

    @cython.cfunc
    def _set_write_framing(
        self,
        lengths: list[bytes],
        codings: list[bytes],
        response_to: bytes | None,
        status: cython.int,
    ) -> None:
        try:
            framing = body_framing(lengths, codings, response_to, status)
        except FramingError as exc:
            raise LocalProtocolError(str(exc)) from None
        self._wframing = framing[0]
        self._wleft = framing[1]

    @cython.cfunc
    def _send_informational(self, response: InformationalResponse) -> bytes:
        status = response.status_code
        if not 100 <= status < 200:
            raise LocalProtocolError("an InformationalResponse needs a 1xx status")
        if status == 101:
            if not self._proposals & P_UPGRADE:
                raise LocalProtocolError("101 Switching Protocols without an Upgrade")
            self._process(False, E_SWITCH_UPGRADE)
        else:
            self._process(False, E_INFORMATIONAL)
        self._waiting_100 = False
        return _status_head(response.http_version, status, response.reason, response.headers)

    @cython.cfunc
    def _send_response(self, response: Response) -> bytes:
        status = response.status_code
        headers = response.headers
        if not 200 <= status < 1000:
            raise LocalProtocolError("a Response needs a status of 200 to 999")
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
        method = self._request_method
        self._set_write_framing(lengths, codings, method if method is not None else b"", status)
        switch = bool(self._proposals & P_CONNECT) and 200 <= status < 300
        no_body = status in (204, 304) or switch
        # h11's clean-up of what we send: a body without a length is chunked
        # for an HTTP/1.1 peer, and delimited by closing for an older one.
        need_close = False
        if not (no_body or lengths):
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
        elif connection and _has_close(connection):
            self._keep_alive = False
        self._process(False, E_SWITCH_CONNECT if switch else E_RESPONSE)
        self._waiting_100 = False
        if no_body or method == b"HEAD":
            self._wframing = F_LENGTH
            self._wleft = 0
        return _status_head(response.http_version, status, response.reason, headers)


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
