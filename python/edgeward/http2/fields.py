"""Checking and shaping received HTTP/2 field blocks, in one pass each.

h2 can validate received headers itself (`validate_inbound_headers`), but it
does so with a chain of seven generators that look at every byte of every
name and value in Python: the largest cost of receiving a request after HPACK.
We switch that off and check here instead, with one regular expression per
name and value, while building the request in the HTTP/1 shape the proxy
needs. The rules are RFC 9113 §8.2 and §8.3 (what h2 checks), and field names
must be lower-case *tokens* (RFC 9110 §5.1), a little stricter than RFC 9113's
minimum, because every request is forwarded over HTTP/1.1.

A block that breaks a rule is a malformed message: a stream error of type
PROTOCOL_ERROR (RFC 9113 §8.1.1), raised as `MalformedFields`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

Headers = list[tuple[bytes, bytes]]

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+")
"""A lower-case field name (RFC 9110 token; RFC 9113 §8.2.1 forbids upper case)."""

_BAD_VALUE = re.compile(rb"[\x00\r\n]|\A[ \t]|[ \t]\Z")
"""NUL, CR or LF anywhere, or whitespace at either end (RFC 9113 §8.2.1)."""

_CONNECTION_SPECIFIC = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
)
"""RFC 9113 §8.2.2: these make a message malformed."""

_PSEUDO = frozenset({b":method", b":scheme", b":authority", b":path", b":protocol"})


class MalformedFields(Exception):
    """A request or trailer block that breaks RFC 9113 §8.2/§8.3."""


class RequestFields:
    """The pseudo-header fields lifted out, and the regular ones."""

    __slots__ = ("authority", "headers", "method", "path", "protocol", "scheme")

    def __init__(self) -> None:
        self.method = self.path = self.authority = self.scheme = b""
        self.protocol: bytes | None = None
        self.headers: Headers = []


def parse_request(fields: Iterable[tuple[bytes, bytes]]) -> RequestFields:
    """Check a request's header block and split it. Cookies split over
    several fields are joined with "; " (RFC 9113 §8.2.3) for HTTP/1.1;
    without `:authority`, `Host` gives the authority."""
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
            elif name == b":scheme":
                out.scheme = value
            else:
                out.protocol = value
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
        headers.append((name, value))
    if cookies:
        headers.append((b"cookie", b"; ".join(cookies)))
    _check_pseudo(out, seen_pseudo)
    if b":authority" in seen_pseudo:
        if host is not None and host != out.authority:
            raise MalformedFields(":authority and Host differ")
    elif host is not None:
        out.authority = host
    else:
        raise MalformedFields("neither :authority nor Host")
    return out


def _check_pseudo(out: RequestFields, seen: set[bytes]) -> None:
    """RFC 9113 §8.3.1 and RFC 8441 §4 (extended CONNECT)."""
    if not out.method:
        raise MalformedFields("no :method")
    if out.method == b"CONNECT" and out.protocol is None:
        if b":scheme" in seen or b":path" in seen:
            raise MalformedFields("CONNECT with :scheme or :path")
        return
    if out.protocol is not None and out.method != b"CONNECT":
        raise MalformedFields(":protocol without CONNECT")
    if not out.scheme or not out.path:
        raise MalformedFields("no (or empty) :scheme or :path")


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
