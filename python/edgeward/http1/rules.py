"""What edgeward accepts from an HTTP/1.1 peer, written plainly.

The h11 codec applies these checks around h11 (on the raw bytes, before h11
parses them) wherever h11 is more lenient than we want; the fast path
implements the same rules on llhttp in its own way. The differential tests
hold the two to each other, so this module is the readable reference. See
docs/http1.md for the rejection table and the order the checks run in.
"""

from __future__ import annotations

import re
from typing import Final

from edgeward.http1.codec import Limits
from edgeward.http1.events import ProtocolError

# The methods llhttp knows (RFC 9110 and the WebDAV/CalDAV/UPnP/... family).
# Any other token is "not implemented" (501), as RFC 9110 §9.1 suggests.
KNOWN_METHODS: Final = frozenset(
    b"ACL BIND CHECKOUT CONNECT COPY DELETE GET HEAD LINK LOCK M-SEARCH MERGE "
    b"MKACTIVITY MKCALENDAR MKCOL MOVE NOTIFY OPTIONS PATCH POST PROPFIND PROPPATCH "
    b"PURGE PUT QUERY REBIND REPORT SEARCH SOURCE SUBSCRIBE TRACE UNBIND UNLINK "
    b"UNLOCK UNSUBSCRIBE".split()
)

_TOKEN = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])")
_STATUS_LINE = re.compile(rb"HTTP/([0-9])\.([0-9]) ([0-9]{3})(?: [\t\x20-\x7e\x80-\xff]*)?")
# The request-target forms of RFC 9112 §3.2. Absolute-form is limited to
# http(s) URLs; authority-form (CONNECT only) is host:port.
_ORIGIN_FORM = re.compile(rb"/[\x21-\x7e]*")
_ABSOLUTE_FORM = re.compile(
    rb"[hH][tT][tT][pP][sS]?://[-A-Za-z0-9._~%!$&'()*+,;=:@\[\]]*(?:[/?#][\x21-\x7e]*)?"
)
_AUTHORITY_FORM = re.compile(rb"[-A-Za-z0-9._~%!$&'()*+,;=\[\]:]*:[0-9]+")
_SUPPORTED_VERSIONS: Final = frozenset({(b"1", b"0"), (b"1", b"1")})

# Inside a field line: a control character other than HTAB, or a bare CR/LF.
_BAD_FIELD_BYTE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_BARE_LF = re.compile(rb"(?<!\r)\n")
_DIGITS = re.compile(rb"[0-9]{1,18}")
MAX_CONTENT_LENGTH_DIGITS: Final = 18


def find_head_end(data: bytes, limits: Limits) -> int:
    """Where the head at the start of `data` (not empty) ends, just past its
    blank line, or -1 while it is incomplete. Checked as soon as the bytes are
    there, so the verdict does not depend on how the stream was split: a
    first byte that cannot start a head (a control character, space or empty
    line: TLS on a plain port), then a bare LF within the head (400), then
    the size (431)."""
    if data[:1] < b"!":
        raise ProtocolError("not an HTTP/1 message head")
    end = data.find(b"\r\n\r\n", 0, limits.max_header_bytes)
    if _BARE_LF.search(data, 0, end if end >= 0 else limits.max_header_bytes):
        raise ProtocolError("bare LF in a message head")
    if end >= 0:
        return end + 4
    if len(data) >= limits.max_header_bytes:
        raise ProtocolError("header section too large", 431)
    return -1


def check_request_head(lines: list[bytes], limits: Limits) -> None:
    """A complete request head split on CRLF (without its blank line)."""
    _check_count(lines[1:], limits)
    check_request_line(lines[0], limits)
    check_field_lines(lines[1:], limits)
    check_framing_fields(lines[1:])


def check_response_head(lines: list[bytes], limits: Limits) -> None:
    """A complete response head split on CRLF (without its blank line)."""
    _check_count(lines[1:], limits)
    check_status_line(lines[0])
    check_field_lines(lines[1:], limits)
    check_framing_fields(lines[1:])


def _check_count(fields: list[bytes], limits: Limits) -> None:
    if len(fields) > limits.max_header_count:
        raise ProtocolError("too many header fields", 431)


def check_request_line(line: bytes, limits: Limits) -> None:
    """Syntax (400), then version (505), method (501), target form (400) and
    target length (414)."""
    match = _REQUEST_LINE.fullmatch(line)
    if match is None:
        raise ProtocolError("malformed request line")
    method, target, major, minor = match.groups()
    if (major, minor) not in _SUPPORTED_VERSIONS:
        raise ProtocolError("HTTP version not supported", 505)
    if method not in KNOWN_METHODS:
        raise ProtocolError("unknown method", 501)
    if method == b"CONNECT":
        form_ok = _AUTHORITY_FORM.fullmatch(target) is not None
    elif target == b"*":
        form_ok = method == b"OPTIONS"
    else:
        form_ok = (
            _ORIGIN_FORM.fullmatch(target) is not None
            or _ABSOLUTE_FORM.fullmatch(target) is not None
        )
    if not form_ok:
        raise ProtocolError("malformed request-target")
    if len(target) > limits.max_target_length:
        raise ProtocolError("request-target too long", 414)


def check_status_line(line: bytes) -> None:
    """Syntax (400), then version (505); the status is 100-999."""
    match = _STATUS_LINE.fullmatch(line)
    if match is None or match[3][0:1] == b"0":
        raise ProtocolError("malformed status line")
    if (match[1], match[2]) not in _SUPPORTED_VERSIONS:
        raise ProtocolError("HTTP version not supported", 505)


def check_field_lines(lines: list[bytes], limits: Limits) -> None:
    """The raw field lines of a head or trailer section (split on CRLF):
    count (431), then bare CR/LF, control characters and obs-fold (400).
    Field syntax proper (token names, no space before the colon) is the
    parser's job."""
    _check_count(lines, limits)
    for line in lines:
        if _BAD_FIELD_BYTE.search(line):
            raise ProtocolError("control character or bare CR/LF in a field line")
        if line[:1] in (b" ", b"\t"):
            raise ProtocolError("obsolete line folding")


def field_name(line: bytes) -> bytes:
    """The lower-cased name of a raw field line (b"" when it has no colon)."""
    colon = line.find(b":")
    return line[:colon].lower() if colon > 0 else b""


def field_value(line: bytes) -> bytes:
    return line[line.find(b":") + 1 :].strip(b" \t")


def check_framing_fields(lines: list[bytes]) -> None:
    """Content-Length and Transfer-Encoding in the raw field lines: one
    Content-Length of 1-18 digits, and never both (request smuggling)."""
    lengths = [field_value(line) for line in lines if field_name(line) == b"content-length"]
    if len(lengths) > 1:
        raise ProtocolError("more than one Content-Length")
    if lengths and _DIGITS.fullmatch(lengths[0]) is None:
        raise ProtocolError("malformed Content-Length")
    if lengths and any(field_name(line) == b"transfer-encoding" for line in lines):
        raise ProtocolError("both Content-Length and Transfer-Encoding")


# --- chunked bodies ---------------------------------------------------------------

MAX_CHUNK_LINE: Final = 4096
_EXT_ITEM = (
    rb"[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|"
    rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"))?'
)
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,16})(?:;" + _EXT_ITEM + rb"(?:[ \t]*;" + _EXT_ITEM + rb")*)?[ \t]*"
)


def check_chunk_line(data: bytes) -> tuple[int, int] | None:
    """`data` starts with a chunk-size line: 1-16 hex digits, RFC 9112 chunk
    extensions (the first ";" right after the digits) and optional trailing
    whitespace, at most MAX_CHUNK_LINE bytes (400). Returns the line's length
    with its CRLF and the chunk size, or None while the line is incomplete."""
    end = data.find(b"\r\n", 0, MAX_CHUNK_LINE + 2)
    if end < 0:
        if len(data) > MAX_CHUNK_LINE + 1 or b"\n" in data:
            raise ProtocolError("malformed chunk line")
        return None
    match = _CHUNK_LINE.fullmatch(data, 0, end)
    if match is None:
        raise ProtocolError("malformed chunk line")
    return end + 2, int(match[1], 16)


def check_trailer_section(data: bytes, limits: Limits) -> None:
    """`data` starts with a trailer section: checked like a head (bare LF,
    then size: 431, count: 431, field lines: 400), and without framing
    fields (400)."""
    if data[:2] == b"\r\n":
        return
    end = data.find(b"\r\n\r\n", 0, limits.max_header_bytes)
    if _BARE_LF.search(data, 0, end if end >= 0 else limits.max_header_bytes):
        raise ProtocolError("bare LF in the trailer section")
    if end < 0:
        if len(data) >= limits.max_header_bytes:
            raise ProtocolError("trailer section too large", 431)
        return
    lines = data[:end].split(b"\r\n")
    check_field_lines(lines, limits)
    if any(field_name(line) in (b"content-length", b"transfer-encoding") for line in lines):
        raise ProtocolError("framing field in the trailer section")
