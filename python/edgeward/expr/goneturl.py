"""Go's `net/url.Parse` and `ParseRequestURI` (Go 1.24), for `parseUrl()`,
`url.parse()` and `isURL()` (docs/cel.md §11.4).

A port, not a lookalike: the gateway's functions are Go's, and URL parsers
disagree on edge cases (Python's `urllib.parse` accepts what Go rejects and
splits differently). Go works on bytes; so does this module: the text is
UTF-8 encoded first, and a decoded part that is not UTF-8 (`%ff` in a path)
makes the parse fail, as CEL strings are Unicode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


class URLError(ValueError):
    """What Go's parser returns as an error (the message is Go's)."""


_ALNUM: Final = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_HEX: Final = frozenset(b"0123456789abcdefABCDEF")

# encoding modes of Go's shouldEscape
PATH, PATH_SEGMENT, HOST, ZONE, USER_PASSWORD, QUERY_COMPONENT, FRAGMENT = range(1, 8)


def _should_escape(c: int, mode: int) -> bool:
    if c in _ALNUM:
        return False
    if mode in (HOST, ZONE) and c in b"!$&'()*+,;=:[]<>\"":
        return False
    if c in b"-_.~":
        return False
    if c in b"$&+,/:;=?@":
        if mode == PATH:
            return c == ord("?")
        if mode == PATH_SEGMENT:
            return c in b"/;,?"
        if mode == USER_PASSWORD:
            return c in b"@/?:"
        if mode == QUERY_COMPONENT:
            return True
        if mode == FRAGMENT:
            return False
    return not (mode == FRAGMENT and c in b"!()*")


def _unescape(s: bytes, mode: int) -> bytes:
    n = 0
    has_plus = False
    i = 0
    while i < len(s):
        c = s[i]
        if c == 0x25:  # %
            n += 1
            if i + 2 >= len(s) or s[i + 1] not in _HEX or s[i + 2] not in _HEX:
                raise URLError(f"invalid URL escape {_quote(s[i : i + 3])}")
            if mode == HOST and int(s[i + 1 : i + 2], 16) < 8 and s[i : i + 3] != b"%25":
                raise URLError(f"invalid URL escape {_quote(s[i : i + 3])}")
            if mode == ZONE:
                v = int(s[i + 1 : i + 3], 16)
                if s[i : i + 3] != b"%25" and v != 0x20 and _should_escape(v, HOST):
                    raise URLError(f"invalid URL escape {_quote(s[i : i + 3])}")
            i += 3
        elif c == 0x2B:  # +
            has_plus = mode == QUERY_COMPONENT
            i += 1
        else:
            if mode in (HOST, ZONE) and c < 0x80 and _should_escape(c, mode):
                raise URLError(f"invalid character {_quote(s[i : i + 1])} in host name")
            i += 1
    if n == 0 and not has_plus:
        return s
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == 0x25:
            out.append(int(s[i + 1 : i + 3], 16))
            i += 3
            continue
        out.append(0x20 if c == 0x2B and mode == QUERY_COMPONENT else c)
        i += 1
    return bytes(out)


def _escape(s: bytes, mode: int) -> bytes:
    out = bytearray()
    for c in s:
        if c == 0x20 and mode == QUERY_COMPONENT:
            out.append(0x2B)
        elif _should_escape(c, mode):
            out += b"%%%02X" % c
        else:
            out.append(c)
    return bytes(out)


def _quote(b: bytes) -> str:
    return '"' + b.decode("utf-8", "replace") + '"'


@dataclass(frozen=True, slots=True)
class URL:
    """Go's `url.URL`, field by field (`user` is None for Go's nil)."""

    scheme: str = ""
    opaque: str = ""
    user: tuple[str, str, bool] | None = None  # username, password, password set
    host: str = ""
    path: str = ""
    raw_path: str = ""
    omit_host: bool = False
    force_query: bool = False
    raw_query: str = ""
    fragment: str = ""
    raw_fragment: str = ""


def _text(b: bytes) -> str:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        raise URLError("the decoded URL is not valid UTF-8") from None


def parse(raw: str) -> URL:
    """Go's `url.Parse`: a URL or a relative reference, with a fragment."""
    data = raw.encode("utf-8")
    head, sep, frag = data.partition(b"#")
    fields = _parse(head, via_request=False)
    if sep and frag:
        fragment = _unescape(frag, FRAGMENT)
        fields["fragment"] = _text(fragment)
        fields["raw_fragment"] = "" if _escape(fragment, FRAGMENT) == frag else _text(frag)
    return URL(**fields)  # type: ignore[arg-type]


def parse_request_uri(raw: str) -> URL:
    """Go's `url.ParseRequestURI`: an absolute URI or an absolute path, no
    fragment (a `#` is part of the text)."""
    return URL(**_parse(raw.encode("utf-8"), via_request=True))  # type: ignore[arg-type]


def _parse(raw: bytes, *, via_request: bool) -> dict[str, object]:
    if any(b < 0x20 or b == 0x7F for b in raw):
        raise URLError("net/url: invalid control character in URL")
    if not raw and via_request:
        raise URLError("empty url")
    fields: dict[str, object] = {}
    if raw == b"*":
        fields["path"] = "*"
        return fields
    scheme, rest = _get_scheme(raw)
    scheme = scheme.lower()
    fields["scheme"] = _text(scheme)
    if rest.endswith(b"?") and rest.count(b"?") == 1:
        fields["force_query"] = True
        rest = rest[:-1]
    else:
        rest, _, query = rest.partition(b"?")
        fields["raw_query"] = _text(query)
    if not rest.startswith(b"/"):
        if scheme:
            fields["opaque"] = _text(rest)
            return fields
        if via_request:
            raise URLError("invalid URI for request")
        segment = rest.partition(b"/")[0]
        if b":" in segment:
            raise URLError("first path segment in URL cannot contain colon")
    if (scheme or (not via_request and not rest.startswith(b"///"))) and rest.startswith(b"//"):
        authority, slash, tail = rest[2:].partition(b"/")
        rest = slash + tail
        user, host = _parse_authority(authority)
        fields["user"] = user
        fields["host"] = _text(host)
    elif scheme and rest.startswith(b"/"):
        fields["omit_host"] = True
    path = _unescape(rest, PATH)
    fields["path"] = _text(path)
    fields["raw_path"] = "" if _escape(path, PATH) == rest else _text(rest)
    return fields


def _get_scheme(raw: bytes) -> tuple[bytes, bytes]:
    for i, c in enumerate(raw):
        if c in _ALNUM and not 0x30 <= c <= 0x39:
            continue
        if 0x30 <= c <= 0x39 or c in b"+-.":
            if i == 0:
                return b"", raw
            continue
        if c == 0x3A:  # :
            if i == 0:
                raise URLError("missing protocol scheme")
            return raw[:i], raw[i + 1 :]
        return b"", raw
    return b"", raw


def _parse_authority(authority: bytes) -> tuple[tuple[str, str, bool] | None, bytes]:
    i = authority.rfind(b"@")
    host = _parse_host(authority[i + 1 :] if i >= 0 else authority)
    if i < 0:
        return None, host
    userinfo = authority[:i]
    if not _valid_userinfo(userinfo):
        raise URLError("net/url: invalid userinfo")
    if b":" not in userinfo:
        return (_text(_unescape(userinfo, USER_PASSWORD)), "", False), host
    username, _, password = userinfo.partition(b":")
    return (
        _text(_unescape(username, USER_PASSWORD)),
        _text(_unescape(password, USER_PASSWORD)),
        True,
    ), host


def _parse_host(host: bytes) -> bytes:
    if host.startswith(b"["):
        i = host.rfind(b"]")
        if i < 0:
            raise URLError("missing ']' in host")
        colon_port = host[i + 1 :]
        if not _valid_optional_port(colon_port):
            raise URLError(f"invalid port {_quote(colon_port)} after host")
        zone = host[:i].find(b"%25")
        if zone >= 0:
            return (
                _unescape(host[:zone], HOST)
                + _unescape(host[zone:i], ZONE)
                + _unescape(host[i:], HOST)
            )
    else:
        i = host.rfind(b":")
        if i != -1 and not _valid_optional_port(host[i:]):
            raise URLError(f"invalid port {_quote(host[i:])} after host")
    return _unescape(host, HOST)


def _valid_optional_port(port: bytes) -> bool:
    if not port:
        return True
    return port[:1] == b":" and all(0x30 <= b <= 0x39 for b in port[1:])


_USERINFO: Final = _ALNUM | frozenset(b"-._:~!$&'()*+,;=%@")


def _valid_userinfo(s: bytes) -> bool:
    # Go ranges over runes: any non-ASCII code point is invalid, as is any
    # byte of a multi-byte UTF-8 sequence here.
    return all(b in _USERINFO for b in s)
