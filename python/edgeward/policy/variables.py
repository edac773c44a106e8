"""The values of `conn.*`, `req.*`, `res.*` and `endpoint.*`.

Each variable is an object described by a table of fields, each field built
from the wire data (`RequestHead`, `ConnectionInfo`...) by a small function,
or a `Nested` object with its own table (`req.url`, `req.user_agent`).

Two ways to build a value from the same tables:

- `shaped(fields, shape)`: a function that builds a plain `dict` with only
  the fields a policy's CEL reads (`Shape`, from the programs'
  `references`). The native CEL reads exact dicts fastest, and a field the
  policy never names (cookies, the user agent) is never computed. This is
  the engine's hot path: a phase's activation is built from it once.
- `LazyMap`: all the fields, each built on first read; for a variable a
  program reads as a whole (`size(req)`, `json.encode(conn)`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from http.cookies import SimpleCookie
from typing import Any, Union
from urllib.parse import parse_qs, unquote

from edgeward.hooks import ConnectionInfo, Header, RequestHead

ABSENT: Any = object()  # a builder's "this field does not exist here"


@dataclass(frozen=True, slots=True)
class Nested:
    """A field whose value is an object of its own: `source` makes that
    object's source from the parent's (or ABSENT), `fields` build from it."""

    source: Callable[[Any], Any]
    fields: Fields


Fields = Mapping[str, Union[Callable[[Any], Any], Nested]]  # noqa: UP007 (a runtime alias)

Shape = Mapping[str, "Shape | None"]
"""The fields of an object a policy reads; None: the whole value."""


def shape_of(references: Iterable[str]) -> dict[str, Shape | None]:
    """The variable paths programs read (`req.url.path`, `conn`), as a tree
    by root variable: `{"req": {"url": {"path": None}}, "conn": None}`."""
    tree: dict[str, Any] = {}
    for reference in references:
        node = tree
        *parents, last = reference.split(".")
        for part in parents:
            child = node.get(part, {})
            if child is None:  # the whole of it is read already
                break
            node = node.setdefault(part, child)
        else:
            node[last] = None
    return tree


def shaped(fields: Fields, shape: Shape | None) -> Callable[[Any], Mapping[str, Any]]:
    """A function from a source to the value of its object: a dict of the
    fields in `shape` (a field that is ABSENT is left out, as a missing
    key), or for `shape` None a `LazyMap` of all of them.

    The function is generated, one statement per field (what
    `dataclasses` does for `__init__`): this runs for every request, and a
    loop over a table of fields costs as much again as the fields."""
    if shape is None:
        return lambda source: LazyMap(source, fields)
    namespace: dict[str, Any] = {"ABSENT": ABSENT}
    lines = ["def build(source):", "    out = {}"]
    for n, (key, sub) in enumerate(shape.items()):
        field = fields.get(key)
        if field is None:  # not a field of this object: reading it fails as it should
            continue
        if isinstance(field, Nested):
            field = _nested(field, shaped(field.fields, sub))
        namespace[f"field_{n}"] = field
        lines += [
            f"    value = field_{n}(source)",
            "    if value is not ABSENT:",
            f"        out[{key!r}] = value",
        ]
    lines.append("    return out")
    exec("\n".join(lines), namespace)
    build: Callable[[Any], Mapping[str, Any]] = namespace["build"]
    return build


def _nested(field: Nested, build: Callable[[Any], Any]) -> Callable[[Any], Any]:
    source_of = field.source

    def make(source: Any) -> Any:
        child = source_of(source)
        return ABSENT if child is ABSENT else build(child)

    return make


class LazyMap(dict[str, Any]):
    """A mapping (read-only to CEL) whose values are computed on first access from a
    source object, by a table of fields shared by every instance.

    A dict subclass: once a field is built, the CEL bindings read it at C
    speed; `__missing__` builds the others on demand. A builder may return
    `ABSENT` for a field this request does not have (`content_length`
    without the header): it then stays a missing key."""

    __slots__ = ("_absent", "_fields", "_source")

    def __init__(self, source: Any, fields: Fields) -> None:
        # (dict.__new__ made the empty dict: no dict.__init__ call needed)
        self._source = source
        self._fields = fields
        self._absent: set[str] | None = None

    def __missing__(self, key: str) -> Any:
        field = self._fields.get(key)
        if field is None or (self._absent is not None and key in self._absent):
            raise KeyError(key)
        if isinstance(field, Nested):
            child = field.source(self._source)
            value = ABSENT if child is ABSENT else LazyMap(child, field.fields)
        else:
            value = field(self._source)
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
        for key in self._fields:
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
    values = headers.get("content-length")
    value = values[0] if values else None
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


@lru_cache(maxsize=1024)  # clients send the same few agents again and again
def _ua_is_bot(raw: str) -> bool:
    return _BOT.search(raw) is not None


USER_AGENT_FIELDS: Fields = {
    "": lambda raw: raw,
    "name": lambda raw: _ua_product(raw)[0],
    "version": lambda raw: _ua_product(raw)[1],
    "os": _ua_os,
    "os_version": lambda raw: "",
    "device": lambda raw: "mobile" if _ua_mobile(raw) else "tablet" if _ua_tablet(raw) else "",
    "is_bot": _ua_is_bot,
    "is_mobile": _ua_mobile,
    "is_tablet": _ua_tablet,
    "is_desktop": lambda raw: not (_ua_mobile(raw) or _ua_tablet(raw)) and bool(_ua_os(raw)),
    "url": lambda raw: "",
}
"""A small parse of the User-Agent, field by field: enough for `is_bot`,
`is_mobile` and the browser's name and version."""


# --- req.* -----------------------------------------------------------------------


class RequestSource:
    """The wire data `req.*` is built from; the header map is made once,
    when a field first needs it."""

    __slots__ = ("_headers", "head", "received_at")

    def __init__(self, head: RequestHead, received_at: float) -> None:
        self.head = head
        self.received_at = received_at
        self._headers: dict[str, list[str]] | None = None

    @property
    def headers(self) -> dict[str, list[str]]:
        if self._headers is None:
            self._headers = header_map(self.head.headers)
        return self._headers


def full_url(head: RequestHead) -> str:
    return f"{head.scheme.decode('latin-1')}://{head.authority.decode('latin-1')}{head.target.decode('latin-1')}"


class UrlSource:
    """The parts of the request URL, split once."""

    __slots__ = ("head", "path", "query", "raw_path", "target")

    def __init__(self, head: RequestHead) -> None:
        self.head = head
        self.target = head.target.decode("latin-1")
        path, _, self.query = self.target.partition("?")
        self.raw_path = path or "/"
        self.path = unquote(self.raw_path) if "%" in self.raw_path else self.raw_path

    @property
    def scheme(self) -> str:
        return self.head.scheme.decode("latin-1")

    @property
    def authority(self) -> str:
        return self.head.authority.decode("latin-1")


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


URL_FIELDS: Fields = {
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


def _user_agent(s: RequestSource) -> Any:
    values = s.headers.get("user-agent")
    return values[0] if values else ABSENT


REQUEST_FIELDS: Fields = {
    "method": lambda s: s.head.method.decode("latin-1"),
    "url": Nested(lambda s: UrlSource(s.head), URL_FIELDS),
    "host": lambda s: s.head.authority.decode("latin-1"),
    "headers": lambda s: s.headers,
    "trailers": lambda s: {},
    "cookies": lambda s: request_cookies(s.headers),
    "content_length": lambda s: _content_length(s.headers),
    "content_type": lambda s: _content_type(_first(s.headers, "content-type")),
    "content_encoding": lambda s: _list_header(s.headers, "content-encoding"),
    "user_agent": Nested(_user_agent, USER_AGENT_FIELDS),
    "location": lambda s: _first(s.headers, "location") or ABSENT,
    "version": lambda s: (
        "HTTP/2.0" if s.head.http_version == b"2" else f"HTTP/{s.head.http_version.decode()}"
    ),
    "ts": lambda s: {"header_received": timestamp(s.received_at)},
}


# --- res.* ------------------------------------------------------------------------


class ResponseSource:
    """The response as it reached the phase (actions change a later copy),
    so its headers are read at once."""

    __slots__ = ("headers", "status")

    def __init__(self, status: int, headers: list[Header]) -> None:
        self.status = status
        self.headers = header_map(headers)


RESPONSE_FIELDS: Fields = {
    "status_code": lambda s: s.status,
    "headers": lambda s: s.headers,
    "trailers": lambda s: {},
    "cookies": lambda s: response_cookies(s.headers),
    "content_length": lambda s: _content_length(s.headers),
    "content_type": lambda s: _content_type(_first(s.headers, "content-type")),
    "content_encoding": lambda s: _list_header(s.headers, "content-encoding"),
    "location": lambda s: _first(s.headers, "location") or ABSENT,
}


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


def tls_values(conn: ConnectionInfo) -> Any:
    """`conn.tls` as policies read it (`actions.ngrok.terminate_tls` mirrors it)."""
    return _tls(conn)


CONN_FIELDS: Fields = {
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


ENDPOINT_FIELDS: Fields = {
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
