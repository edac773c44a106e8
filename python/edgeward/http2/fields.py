"""Checking and shaping received HTTP/2 field blocks, in one pass each.

h2 can validate received headers itself (`validate_inbound_headers`), but it
does so with a chain of seven generators that look at every byte of every
name and value in Python: the largest cost of receiving a request after HPACK.
We switch that off and check here instead, with one regular expression per
name and value, while building the request in the HTTP/1 shape the proxy
needs. The rules are RFC 9113 §8.2 and §8.3 (what h2 checks), and field names
must be lower-case *tokens* (RFC 9110 §5.1), a little stricter than RFC 9113's
minimum, because every request is forwarded over HTTP/1.1.

The pseudo-headers are checked as strictly as an HTTP/1.1 request line
(`edgeward.http1.rules`): `:path` is origin-form (or `*` for OPTIONS), and
`:scheme` must be the scheme of the connection it arrived on (`http` on
cleartext, `https` on TLS): it becomes `X-Forwarded-Proto`, `Forwarded`'s
`proto` and `req.url.scheme`, so a client must not choose it.

A block that breaks a rule is a malformed message: a stream error of type
PROTOCOL_ERROR (RFC 9113 §8.1.1), raised as `MalformedFields`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

Headers = list[tuple[bytes, bytes]]

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")
"""A lower-case field name (RFC 9110 token; RFC 9113 §8.2.1 forbids upper case)."""

_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]|\A[ \t]|[ \t]\Z")
"""A control character other than HTAB anywhere, or whitespace at either end.
RFC 9113 §8.2.1 forbids NUL, CR and LF; the other controls are not field
characters either (RFC 9110 §5.5) and cannot be forwarded over HTTP/1.1."""

_METHOD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""`:method` is a token (RFC 9110 §9.1), as in an HTTP/1.1 request line."""

_CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
"""RFC 9113 §8.2.2: these make a message malformed."""

_PSEUDO = frozenset({b":method", b":scheme", b":authority", b":path"})
"""`:protocol` is not among them: it is allowed only after the server sent
SETTINGS_ENABLE_CONNECT_PROTOCOL, which we do not (RFC 8441 §3)."""

_ORIGIN_FORM = re.compile(rb"/[\x21-\x7e]*")
"""`:path` (RFC 9113 §8.3.1): origin-form in visible ASCII, as the HTTP/1.1
request-target (`http1.rules`): no space, control, DEL or non-ASCII byte."""

_CONNECT_AUTHORITY = re.compile(rb"[-A-Za-z0-9._~%!$&'()*+,;=\[\]:]*:[0-9]+")
"""CONNECT's `:authority`: host:port, without userinfo (RFC 9113 §8.5)."""


class MalformedFields(Exception):
    """A request or trailer block that breaks RFC 9113 §8.2/§8.3."""


class RequestFields:
    """The pseudo-header fields lifted out, and the regular ones."""

    __slots__ = ("authority", "content_length", "headers", "method", "path", "scheme")

    def __init__(self) -> None:
        self.method = self.path = self.authority = self.scheme = b""
        self.content_length: int | None = None
        self.headers: Headers = []


def parse_request(
    fields: Iterable[tuple[bytes, bytes]], scheme: bytes, end_stream: bool = False
) -> RequestFields:
    """Check a request's header block and split it. `scheme` is the
    connection's (`http` or `https`); `end_stream` that the block ended the
    stream (no content follows). Cookies split over several fields are
    joined with "; " (RFC 9113 §8.2.3) for HTTP/1.1; without `:authority`,
    `Host` gives the authority. A CONNECT request's path is its authority
    (the authority-form of HTTP/1.1) and its scheme the connection's."""
    out = RequestFields()
    seen_pseudo: set[bytes] = set()
    headers = out.headers
    cookies: list[bytes] = []
    host: bytes | None = None
    token = _TOKEN.fullmatch
    bad_value = _BAD_VALUE.search
    for raw_name, raw_value in fields:
        name, value = bytes(raw_name), bytes(raw_value)
        if value and bad_value(value):
            raise MalformedFields(f"invalid value of {name!r}")
        if name[:1] == b":":
            if headers or cookies or host is not None:
                raise MalformedFields(f"pseudo-header {name!r} after a regular field")
            if name not in _PSEUDO or name in seen_pseudo:
                raise MalformedFields(f"unknown or repeated pseudo-header {name!r}")
            seen_pseudo.add(name)
            if name == b":method":
                out.method = value
            elif name == b":path":
                out.path = value
            elif name == b":authority":
                out.authority = value
            else:
                out.scheme = value
            continue
        if token(name) is None:
            raise MalformedFields(f"invalid field name {name!r}")
        if name in _CONNECTION_SPECIFIC:
            raise MalformedFields(f"connection-specific field {name!r}")
        if name == b"cookie":
            cookies.append(value)
            continue
        if name == b"te" and value.lower() != b"trailers":
            raise MalformedFields("TE other than 'trailers'")
        if name == b"host":
            if host is not None:
                raise MalformedFields("more than one Host")
            host = value
        elif name == b"content-length":
            out.content_length = _content_length(value, out.content_length)
        headers.append((name, value))
    if cookies:
        headers.append((b"cookie", b"; ".join(cookies)))
    _check_pseudo(out, seen_pseudo, scheme)
    if end_stream and out.content_length:
        raise MalformedFields("content-length without content")  # RFC 9113 §8.1.1
    if b":authority" in seen_pseudo:
        if host is not None and host != out.authority:
            raise MalformedFields(":authority and Host differ")
    elif host is not None:
        out.authority = host
    else:
        raise MalformedFields("neither :authority nor Host")
    return out


def _check_pseudo(out: RequestFields, seen: set[bytes], scheme: bytes) -> None:
    """RFC 9113 §8.3.1 and §8.5 (CONNECT)."""
    if _METHOD.fullmatch(out.method) is None:
        raise MalformedFields(f"no :method, or not a token: {out.method!r}")
    if out.method == b"CONNECT":
        if b":scheme" in seen or b":path" in seen:
            raise MalformedFields("CONNECT with :scheme or :path")
        if _CONNECT_AUTHORITY.fullmatch(out.authority) is None:
            raise MalformedFields("CONNECT without host:port in :authority")
        out.path, out.scheme = out.authority, scheme
        return
    if out.scheme != scheme:
        raise MalformedFields(f":scheme {out.scheme!r} on a connection that is {scheme!r}")
    path = out.path
    if _ORIGIN_FORM.fullmatch(path) is None and (path != b"*" or out.method != b"OPTIONS"):
        raise MalformedFields(f"malformed :path {path!r}")


def _content_length(value: bytes, seen: int | None) -> int:
    """h2 rejects what is not digits (a connection error), checked again so
    this module's verdict does not depend on h2."""
    if not value.isdigit() or (seen is not None and int(value) != seen):
        raise MalformedFields("invalid or conflicting content-length")
    return int(value)


_STATUS = re.compile(rb"[1-5][0-9][0-9]")


def parse_response(fields: Iterable[tuple[bytes, bytes]]) -> tuple[int, Headers]:
    """Check an upstream's response header block (RFC 9113 §8.3.2: `:status`
    only, first, three digits) and split it into the status and the regular
    fields, held to the rules of a request's (they are forwarded, perhaps
    over HTTP/1.1)."""
    status = 0
    headers: Headers = []
    token = _TOKEN.fullmatch
    bad_value = _BAD_VALUE.search
    for raw_name, raw_value in fields:
        name, value = bytes(raw_name), bytes(raw_value)
        if name == b":status":
            if status or headers or _STATUS.fullmatch(value) is None:
                raise MalformedFields(f"misplaced, repeated or invalid :status {value!r}")
            status = int(value)
            continue
        if token(name) is None or name in _CONNECTION_SPECIFIC:
            raise MalformedFields(f"invalid response field {name!r}")
        if value and bad_value(value):
            raise MalformedFields(f"invalid value of {name!r}")
        headers.append((name, value))
    if not status:
        raise MalformedFields("no :status")
    return status, headers


def parse_trailers(fields: Iterable[tuple[bytes, bytes]]) -> Headers:
    """Check a trailer block: regular fields only (RFC 9113 §8.1)."""
    trailers: Headers = []
    token = _TOKEN.fullmatch
    bad_value = _BAD_VALUE.search
    for raw_name, raw_value in fields:
        name, value = bytes(raw_name), bytes(raw_value)
        if token(name) is None or name in _CONNECTION_SPECIFIC:
            raise MalformedFields(f"invalid trailer field {name!r}")
        if value and bad_value(value):
            raise MalformedFields(f"invalid value of {name!r}")
        trailers.append((name, value))
    return trailers
