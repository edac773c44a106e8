"""The values of `conn.*`, `req.*`, `res.*` and `endpoint.*`, built lazily.

A CEL program reads only the variables it names, and the bindings read a
`Mapping` lazily, key by key. So every level here is a `LazyMap`: a field is
computed from the wire data the first time an expression asks for it and kept
for the rest of the exchange. A rule on `req.url.path` never decodes cookies.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, unquote

from edgeward.hooks import ConnectionInfo, EndpointInfo, Header, RequestHead

ABSENT: Any = object()  # a builder's "this field does not exist here"


class LazyMap(dict[str, Any]):
    """A mapping (read-only to CEL) whose values are computed on first access from a
    source object, by a table of builders shared by every instance.

    A dict subclass: once a field is built, the CEL bindings read it at C
    speed; `__missing__` builds the others on demand. A builder may return
    `ABSENT` for a field this request does not have (`content_length`
    without the header): it then stays a missing key."""

    __slots__ = ("_absent", "_builders", "_source")

    def __init__(self, source: Any, builders: Mapping[str, Callable[[Any], Any]]) -> None:
        # (dict.__new__ made the empty dict: no dict.__init__ call needed)
        self._source = source
        self._builders = builders
        self._absent: set[str] | None = None

    def __missing__(self, key: str) -> Any:
        build = self._builders.get(key)
        if build is None or (self._absent is not None and key in self._absent):
            raise KeyError(key)
        value = build(self._source)
        if value is ABSENT:
            if self._absent is None:
                self._absent = set()
            self._absent.add(key)
            raise KeyError(key)
        dict.__setitem__(self, key, value)
        return value

    def __contains__(self, key: object) -> bool:
        if dict.__contains__(self, key):
            return True
        try:
            self[key]  # type: ignore[index]
        except (KeyError, TypeError):
            return False
        return True

    def _build_all(self) -> None:
        for key in self._builders:
            key in self  # noqa: B015 - builds the field as a side effect

    def __iter__(self) -> Iterator[str]:
        self._build_all()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._build_all()
        return dict.__len__(self)

    def keys(self) -> Any:
        self._build_all()
        return dict.keys(self)

    def items(self) -> Any:
        self._build_all()
        return dict.items(self)

    def values(self) -> Any:
        self._build_all()
        return dict.values(self)

    def __repr__(self) -> str:
        return f"LazyMap({dict(self.items())!r})"


def scalar_with_fields(value: Any, fields: dict[str, Any]) -> dict[str, Any]:
    """A CEL object that is also a scalar (`req.url` is a string and has
    `.path`): the own value under the key "" (docs/cel.md §7)."""
    fields[""] = value
    return fields


def timestamp(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, UTC)


def rfc3339(unix: float) -> str:
    return timestamp(unix).isoformat().replace("+00:00", "Z")


# --- headers -------------------------------------------------------------------


def header_map(headers: list[Header]) -> dict[str, list[str]]:
    """Name -> values in order (latin-1: lossless for any byte). Names
    are lower-case already (the `edgeward.hooks.Header` contract)."""
    out: dict[str, list[str]] = {}
    for name, value in headers:
        key = name.decode("latin-1")
        if key in out:
            out[key].append(value.decode("latin-1"))
        else:
            out[key] = [value.decode("latin-1")]
    return out


def _first(headers: Mapping[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return values[0] if values else None


def _content_type(raw: str | None) -> Any:
    if raw is None:
        return ABSENT
    media, _, rest = raw.partition(";")
    params: dict[str, str] = {}
    for part in rest.split(";"):
        key, eq, value = part.strip().partition("=")
        if eq and key:
            params[key.lower()] = value.strip().strip('"')
    return scalar_with_fields(media.strip().lower(), {"parameters": params, "raw": raw})


def _list_header(headers: Mapping[str, list[str]], name: str) -> list[str]:
    return [
        item.strip().lower()
        for value in headers.get(name, ())
        for item in value.split(",")
        if item.strip()
    ]


def _content_length(headers: Mapping[str, list[str]]) -> Any:
    value = _first(headers, "content-length")
    return int(value) if value is not None and value.strip().isdigit() else ABSENT


def request_cookies(headers: Mapping[str, list[str]]) -> dict[str, list[dict[str, str]]]:
    """`Cookie` pairs by name, same-name cookies in header order."""
    out: dict[str, list[dict[str, str]]] = {}
    if "cookie" not in headers:
        return out
    for value in headers["cookie"]:
        for pair in value.split(";"):
            name, eq, val = pair.strip().partition("=")
            if eq and name:
                out.setdefault(name, []).append({"name": name, "value": val.strip('"')})
    return out


def response_cookies(headers: Mapping[str, list[str]]) -> dict[str, list[dict[str, Any]]]:
    """`Set-Cookie` cookies by name, same-name ones longest path first."""
    out: dict[str, list[dict[str, Any]]] = {}
    for value in headers.get("set-cookie", ()):
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(value)
        except Exception:
            continue
        for name, morsel in jar.items():
            cookie: dict[str, Any] = {
                "name": name,
                "value": morsel.value,
                "domain": morsel["domain"],
                "path": morsel["path"],
                "secure": bool(morsel["secure"]),
                "http_only": bool(morsel["httponly"]),
                "same_site": morsel["samesite"],
            }
            out.setdefault(name, []).append(cookie)
    for cookies in out.values():
        cookies.sort(key=lambda c: -len(c["path"]))
    return out


# --- user agent -----------------------------------------------------------------

_BOT = re.compile(r"bot|crawl|spider|slurp|curl/|wget/|python-|httpx|go-http", re.IGNORECASE)
_OSES = (
    ("windows", "Windows"),
    ("iphone", "iOS"),
    ("ipad", "iOS"),
    ("android", "Android"),
    ("mac os x", "Mac OS X"),
    ("linux", "Linux"),
)
_BROWSERS = ("Edg", "OPR", "Firefox", "Chrome", "Safari")


def _ua_product(raw: str) -> tuple[str, str]:
    for browser in _BROWSERS:
        marker = f"{browser}/"
        if marker in raw:
            return browser, raw.split(marker, 1)[1].split(" ", 1)[0]
    name, _, version = raw.split(" ", 1)[0].partition("/")
    return name, version


def _ua_mobile(raw: str) -> bool:
    low = raw.lower()
    return "mobi" in low or ("android" in low and "mobile" in low)


def _ua_tablet(raw: str) -> bool:
    low = raw.lower()
    return "ipad" in low or "tablet" in low


def _ua_os(raw: str) -> str:
    low = raw.lower()
    return next((os for key, os in _OSES if key in low), "")


USER_AGENT_FIELDS: dict[str, Callable[[str], Any]] = {
    "": lambda raw: raw,
    "name": lambda raw: _ua_product(raw)[0],
    "version": lambda raw: _ua_product(raw)[1],
    "os": _ua_os,
    "os_version": lambda raw: "",
    "device": lambda raw: "mobile" if _ua_mobile(raw) else "tablet" if _ua_tablet(raw) else "",
    "is_bot": lambda raw: _BOT.search(raw) is not None,
    "is_mobile": _ua_mobile,
    "is_tablet": _ua_tablet,
    "is_desktop": lambda raw: not (_ua_mobile(raw) or _ua_tablet(raw)) and bool(_ua_os(raw)),
    "url": lambda raw: "",
}


def user_agent(raw: str | None) -> Any:
    """A small parse of the User-Agent, field by field when read: enough
    for `is_bot`, `is_mobile` and the browser's name and version."""
    return ABSENT if raw is None else LazyMap(raw, USER_AGENT_FIELDS)


# --- req.* -----------------------------------------------------------------------


class RequestSource:
    """The wire data `req.*` is built from."""

    __slots__ = ("head", "headers", "received_at")

    def __init__(self, head: RequestHead, received_at: float) -> None:
        self.head = head
        self.received_at = received_at
        self.headers = header_map(head.headers)


def full_url(head: RequestHead) -> str:
    return f"{head.scheme.decode('latin-1')}://{head.authority.decode('latin-1')}{head.target.decode('latin-1')}"


class UrlSource:
    """The parts of the request URL, split once."""

    __slots__ = ("authority", "path", "query", "raw_path", "scheme", "target")

    def __init__(self, head: RequestHead) -> None:
        self.scheme = head.scheme.decode("latin-1")
        self.authority = head.authority.decode("latin-1")
        self.target = head.target.decode("latin-1")
        path, _, self.query = self.target.partition("?")
        self.raw_path = path or "/"
        self.path = unquote(self.raw_path) if "%" in self.raw_path else self.raw_path


def _url_port(u: UrlSource) -> Any:
    host_port = u.authority.rpartition("@")[2]
    if host_port.endswith("]") or ":" not in host_port:
        return ABSENT
    port = host_port.rpartition(":")[2]
    return int(port) if port.isdigit() else ABSENT


def _url_host(u: UrlSource) -> str:
    host = u.authority.rpartition("@")[2]
    if host.startswith("["):
        return host[1 : host.find("]")].lower()
    return host.partition(":")[0].lower()


URL_FIELDS: dict[str, Callable[[UrlSource], Any]] = {
    "": lambda u: f"{u.scheme}://{u.authority}{u.target}",
    "scheme": lambda u: u.scheme,
    "authority": lambda u: u.authority,
    "host": _url_host,
    "port": _url_port,
    "path": lambda u: u.path,
    "raw_path": lambda u: u.raw_path,
    "query": lambda u: u.query,
    "query_params": lambda u: parse_qs(u.query, keep_blank_values=True) if u.query else {},
    "raw": lambda u: f"{u.scheme}://{u.authority}{u.target}",
    "uri": lambda u: u.target,
    "user_password": lambda u: u.authority.rpartition("@")[0],
}


REQUEST_FIELDS: dict[str, Callable[[RequestSource], Any]] = {
    "method": lambda s: s.head.method.decode("latin-1"),
    "url": lambda s: LazyMap(UrlSource(s.head), URL_FIELDS),
    "host": lambda s: s.head.authority.decode("latin-1"),
    "headers": lambda s: s.headers,
    "trailers": lambda s: {},
    "cookies": lambda s: request_cookies(s.headers),
    "content_length": lambda s: _content_length(s.headers),
    "content_type": lambda s: _content_type(_first(s.headers, "content-type")),
    "content_encoding": lambda s: _list_header(s.headers, "content-encoding"),
    "user_agent": lambda s: user_agent(_first(s.headers, "user-agent")),
    "location": lambda s: _first(s.headers, "location") or ABSENT,
    "version": lambda s: (
        "HTTP/2.0" if s.head.http_version == b"2" else f"HTTP/{s.head.http_version.decode()}"
    ),
    "ts": lambda s: {"header_received": timestamp(s.received_at)},
}


def request_values(head: RequestHead, received_at: float) -> LazyMap:
    """`req`: the fields nearly every policy reads are set at once (cheaper
    than building them one by one on demand); the rest wait to be read."""
    source = RequestSource(head, received_at)
    url = UrlSource(head)
    url_values = LazyMap(url, URL_FIELDS)
    url_values["path"] = url.path
    url_values["query"] = url.query
    url_values["scheme"] = url.scheme
    values = LazyMap(source, REQUEST_FIELDS)
    values["method"] = head.method.decode("latin-1")
    values["host"] = url.authority
    values["headers"] = source.headers
    values["url"] = url_values
    return values


# --- res.* ------------------------------------------------------------------------


class ResponseSource:
    """The response as it reached the phase (actions change a later copy)."""

    __slots__ = ("headers", "status")

    def __init__(self, status: int, headers: list[Header]) -> None:
        self.status = status
        self.headers = header_map(headers)


RESPONSE_FIELDS: dict[str, Callable[[ResponseSource], Any]] = {
    "status_code": lambda s: s.status,
    "headers": lambda s: s.headers,
    "trailers": lambda s: {},
    "cookies": lambda s: response_cookies(s.headers),
    "content_length": lambda s: _content_length(s.headers),
    "content_type": lambda s: _content_type(_first(s.headers, "content-type")),
    "content_encoding": lambda s: _list_header(s.headers, "content-encoding"),
    "location": lambda s: _first(s.headers, "location") or ABSENT,
}


def response_values(status: int, headers: list[Header]) -> LazyMap:
    return LazyMap(ResponseSource(status, headers), RESPONSE_FIELDS)


# --- conn.* and endpoint.* -----------------------------------------------------------


def _tls(conn: ConnectionInfo) -> Any:
    tls = conn.tls
    if tls is None:
        return ABSENT
    out: dict[str, Any] = {
        "version": tls.version,
        "cipher_suite": tls.cipher,
        "sni": tls.server_name or "",
        "negotiated_alpn": tls.alpn or "",
        "session_resumed": False,
    }
    cert = tls.client_cert
    if cert is not None:
        out["client"] = {
            "subject": cert.subject,
            "issuer": cert.issuer,
            "serial_number": cert.serial_number,
            "san": {
                "dns_names": list(cert.san_dns),
                "email_addresses": list(cert.san_email),
                "uris": list(cert.san_uri),
                "ip_addresses": list(cert.san_ip),
            },
            "validity": {
                "not_before": timestamp(cert.not_before),
                "not_after": timestamp(cert.not_after),
            },
        }
    return out


CONN_FIELDS: dict[str, Callable[[ConnectionInfo], Any]] = {
    "client_ip": lambda c: c.client_ip,
    "client_port": lambda c: c.client_port,
    "server_ip": lambda c: c.server_ip,
    "server_port": lambda c: c.server_port,
    "server_region": lambda c: "",
    "bytes_in": lambda c: c.bytes_in,
    "bytes_out": lambda c: c.bytes_out,
    "ts": lambda c: {"start": timestamp(c.started_at)},
    "tls": _tls,
    "geo": lambda c: {},
}


def conn_values(conn: ConnectionInfo) -> LazyMap:
    values = LazyMap(conn, CONN_FIELDS)
    values["client_ip"] = conn.client_ip
    values["client_port"] = conn.client_port
    values["server_ip"] = conn.server_ip
    values["server_port"] = conn.server_port
    return values


ENDPOINT_FIELDS: dict[str, Callable[[EndpointInfo], Any]] = {
    "name": lambda e: e.name,
    "id": lambda e: e.id,
    "url": lambda e: e.url,
    "host": lambda e: e.host,
    "port": lambda e: e.port,
    "scheme": lambda e: e.scheme,
    "protocol": lambda e: e.scheme,
    "addr": lambda e: f"{e.host}:{e.port}",
    "metadata": lambda e: dict(e.metadata),
}


def endpoint_values(endpoint: EndpointInfo) -> LazyMap:
    return LazyMap(endpoint, ENDPOINT_FIELDS)
