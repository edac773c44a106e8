"""The values of `conn.*`, `req.*`, `res.*` and `endpoint.*`, built lazily.

A CEL program reads only the variables it names, and the bindings read a
`Mapping` lazily, key by key. So every level here is a `LazyMap`: a field is
computed from the wire data the first time an expression asks for it and kept
for the rest of the exchange. A rule on `req.url.path` never decodes cookies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from edgeward.hooks import ConnectionInfo, EndpointInfo, Header, RequestHead, ResponseHead

S = TypeVar("S")

_ABSENT: Any = object()  # a builder's "this field does not exist here"


class LazyMap(Mapping[str, Any], Generic[S]):
    """A read-only mapping whose values are computed on first access from a
    source object by a table of builders shared by every instance."""

    __slots__ = ("_builders", "_cache", "_source")

    def __init__(self, source: S, builders: Mapping[str, Callable[[S], Any]]) -> None:
        self._source = source
        self._builders = builders
        self._cache: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        try:
            value = self._cache[key]
        except KeyError:
            build = self._builders[key]  # KeyError: no such field
            value = self._cache[key] = build(self._source)
        if value is _ABSENT:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return (k for k in self._builders if k in self)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str) or key not in self._builders:
            return False
        try:
            self[key]
        except KeyError:
            return False
        return True

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"LazyMap({dict(self)!r})"


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
    """Lower-case name -> values in order (latin-1: lossless for any byte)."""
    out: dict[str, list[str]] = {}
    for name, value in headers:
        out.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return out


def _first(headers: Mapping[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return values[0] if values else None


def _content_type(raw: str | None) -> Any:
    if raw is None:
        return _ABSENT
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
    return int(value) if value is not None and value.strip().isdigit() else _ABSENT


def request_cookies(headers: Mapping[str, list[str]]) -> dict[str, list[dict[str, str]]]:
    """`Cookie` pairs by name, same-name cookies in header order."""
    out: dict[str, list[dict[str, str]]] = {}
    for value in headers.get("cookie", ()):
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

_BOT_WORDS = ("bot", "crawl", "spider", "slurp", "curl/", "wget/", "python-", "httpx", "go-http")


def user_agent(raw: str | None) -> Any:
    """A small parse of the User-Agent: enough for `is_bot`, `is_mobile` and
    the first product's name and version."""
    if raw is None:
        return _ABSENT
    low = raw.lower()
    product = raw.split(" ", 1)[0]
    name, _, version = product.partition("/")
    for browser in ("Edg", "OPR", "Firefox", "Chrome", "Safari"):
        marker = f"{browser}/"
        if marker in raw:
            name = browser
            version = raw.split(marker, 1)[1].split(" ", 1)[0]
            break
    is_mobile = "mobi" in low or ("android" in low and "mobile" in low)
    is_tablet = "ipad" in low or "tablet" in low
    os_name = next(
        (os for key, os in _OSES if key in low),
        "",
    )
    return scalar_with_fields(
        raw,
        {
            "name": name,
            "version": version,
            "os": os_name,
            "os_version": "",
            "device": "mobile" if is_mobile else "tablet" if is_tablet else "",
            "is_bot": any(word in low for word in _BOT_WORDS),
            "is_mobile": is_mobile,
            "is_tablet": is_tablet,
            "is_desktop": not (is_mobile or is_tablet) and bool(os_name),
            "url": "",
        },
    )


_OSES = (
    ("windows", "Windows"),
    ("iphone", "iOS"),
    ("ipad", "iOS"),
    ("android", "Android"),
    ("mac os x", "Mac OS X"),
    ("linux", "Linux"),
)


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


def _url(src: RequestSource) -> dict[str, Any]:
    head = src.head
    raw = full_url(head)
    parts = urlsplit(raw)
    fields: dict[str, Any] = {
        "scheme": parts.scheme,
        "authority": parts.netloc,
        "host": (parts.hostname or "").lower(),
        "path": unquote(parts.path) or "/",
        "raw_path": parts.path or "/",
        "query": parts.query,
        "query_params": parse_qs(parts.query, keep_blank_values=True),
        "raw": raw,
        "uri": head.target.decode("latin-1"),
        "user_password": "",
    }
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None:
        fields["port"] = port
    return scalar_with_fields(raw, fields)


REQUEST_FIELDS: dict[str, Callable[[RequestSource], Any]] = {
    "method": lambda s: s.head.method.decode("latin-1"),
    "url": _url,
    "host": lambda s: s.head.authority.decode("latin-1"),
    "headers": lambda s: s.headers,
    "trailers": lambda s: {},
    "cookies": lambda s: request_cookies(s.headers),
    "content_length": lambda s: _content_length(s.headers),
    "content_type": lambda s: _content_type(_first(s.headers, "content-type")),
    "content_encoding": lambda s: _list_header(s.headers, "content-encoding"),
    "user_agent": lambda s: user_agent(_first(s.headers, "user-agent")),
    "location": lambda s: _first(s.headers, "location") or _ABSENT,
    "version": lambda s: (
        "HTTP/2.0" if s.head.http_version == b"2" else f"HTTP/{s.head.http_version.decode()}"
    ),
    "ts": lambda s: {"header_received": timestamp(s.received_at)},
}


def request_values(head: RequestHead, received_at: float) -> LazyMap[RequestSource]:
    return LazyMap(RequestSource(head, received_at), REQUEST_FIELDS)


# --- res.* ------------------------------------------------------------------------


class ResponseSource:
    __slots__ = ("head", "headers")

    def __init__(self, head: ResponseHead) -> None:
        self.head = head
        self.headers = header_map(head.headers)


RESPONSE_FIELDS: dict[str, Callable[[ResponseSource], Any]] = {
    "status_code": lambda s: s.head.status,
    "headers": lambda s: s.headers,
    "trailers": lambda s: {},
    "cookies": lambda s: response_cookies(s.headers),
    "content_length": lambda s: _content_length(s.headers),
    "content_type": lambda s: _content_type(_first(s.headers, "content-type")),
    "content_encoding": lambda s: _list_header(s.headers, "content-encoding"),
    "location": lambda s: _first(s.headers, "location") or _ABSENT,
}


def response_values(head: ResponseHead) -> LazyMap[ResponseSource]:
    return LazyMap(ResponseSource(head), RESPONSE_FIELDS)


# --- conn.* and endpoint.* -----------------------------------------------------------


def _tls(conn: ConnectionInfo) -> Any:
    tls = conn.tls
    if tls is None:
        return _ABSENT
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


def conn_values(conn: ConnectionInfo) -> LazyMap[ConnectionInfo]:
    return LazyMap(conn, CONN_FIELDS)


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


def endpoint_values(endpoint: EndpointInfo) -> LazyMap[EndpointInfo]:
    return LazyMap(endpoint, ENDPOINT_FIELDS)
