"""The values of `conn.*`, `req.*`, `res.*` and `endpoint.*`.

Each variable is an object described by a table of fields, each field built
from the wire data (`RequestHead`, `ConnectionInfo`...) by a small function,
or a `Nested` object with its own table (`req.url`, `req.user_agent`).

Two ways to build a value from the same tables:

- `shaped(fields, shape)`: a function that builds a plain `dict` with only
  the fields a policy's CEL reads (`Shape`, from the programs'
  `references`). The native CEL reads exact dicts fastest, and a field the
  policy never names (cookies, the user agent) is never computed. The
  Python engine builds a phase's activation from it once (with the native
  backend, `native.PhaseRunner` builds the common fields itself and asks
  the `LazyMap` below for the others: `policy.native_phase`).
- `LazyMap`: all the fields, each built on first read; for a variable a
  program reads as a whole (`size(req)`, `json.encode(conn)`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Union
from urllib.parse import parse_qs, unquote

from edgeward import native
from edgeward.hooks import (
    CertExtension,
    ClientCert,
    ConnectionInfo,
    Header,
    RequestHead,
    TlsInfo,
)
from edgeward.ipintel import EMPTY as NO_IP_INTELLIGENCE
from edgeward.ipintel import IpIntelligence
from edgeward.policy.useragent import parse_user_agent

ABSENT: Any = object()  # a builder's "this field does not exist here"


@dataclass(frozen=True, slots=True)
class Nested:
    """A field whose value is an object of its own: `source` makes that
    object's source from the parent's (or ABSENT), `fields` build from it."""

    source: Callable[[Any], Any]
    fields: Fields


Fields = Mapping[str, Union[Callable[[Any], Any], Nested]]  # noqa: UP007 (a runtime alias)


def itself(value: Any) -> Any:
    """The own value of a `Nested` whose source already is that value
    (`conn.client_ip`, `req.user_agent`): read alone, the source is the field."""
    return value


Shape = Mapping[str, "Shape | None"]
"""The fields of an object a policy reads; None: the whole value."""


def shape_of(references: Iterable[str]) -> dict[str, Shape | None]:
    """The variable paths programs read (`req.url.path`, `conn`), as a tree
    by root variable: `{"req": {"url": {"path": None}}, "conn": None}`.

    A path read whole and also read into (`conn.client_ip` and
    `conn.client_ip.categories`) keeps both: the key "" marks the whole
    (`{"client_ip": {"": None, "categories": None}}`). For an object with an
    own value ("" declared: `conn.client_ip` is a string) the whole is that
    value; for any other, the whole object (see `shaped`)."""
    tree: dict[str, Any] = {}
    for reference in references:
        node = tree
        *parents, last = reference.split(".")
        for part in parents:
            child = node.get(part)
            if child is None:
                child = node[part] = {"": None} if part in node else {}
            node = child
        if last in node and node[last] is not None:
            node[last][""] = None
        else:
            node[last] = None
    return tree


def shaped(fields: Fields, shape: Shape | None) -> Callable[[Any], Mapping[str, Any]]:
    """A function from a source to the value of its object: a dict of the
    fields in `shape` (a field that is ABSENT is left out, as a missing
    key), or for `shape` None a `LazyMap` of all of them. The table of
    builders is resolved once here; each call is one plain loop over it."""
    if shape is None or ("" in shape and "" not in fields):
        return lambda source: LazyMap(source, fields)  # the whole object is read
    table: list[tuple[str, Callable[[Any], Any]]] = []
    for key, sub in shape.items():
        field = fields.get(key)
        if field is None:  # not a field of this object: reading it fails as it should
            continue
        if isinstance(field, Nested):
            own = field.fields.get("")
            if sub is None and own is not None and not isinstance(own, Nested):
                # only its own value is read (`conn.client_ip == '...'`)
                field = field.source if own is itself else _nested(field, own)
            else:
                field = _nested(field, shaped(field.fields, sub))
        table.append((key, field))
    builders = tuple(table)

    def build(source: Any) -> Mapping[str, Any]:
        out = {}
        for key, field in builders:
            value = field(source)
            if value is not ABSENT:
                out[key] = value
        return out

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


_GO_ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
"""Go's zero `time.Time`: what a timestamp the edge does not have reads as
(`conn.ts.end` while the connection is open, an absent certificate's
validity), so a comparison never fails."""


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
        cookie = set_cookie(value)
        if cookie is not None:
            out.setdefault(cookie["name"], []).append(cookie)
    for cookies in out.values():
        cookies.sort(key=lambda c: -len(c["path"]))
    return out


_SAME_SITE = {"lax": "Lax", "strict": "Strict", "none": "None"}


def set_cookie(line: str) -> dict[str, Any] | None:
    """One `Set-Cookie` value as `res.cookies[name][i]` shows it, parsed as
    Go's net/http does (`readSetCookies`): the attributes it knows, the
    others in `unparsed_attributes`; `expires` Go's zero time and
    `max_age` zero when absent. None when the name=value pair is missing."""
    first, *attributes = line.split(";")
    name, eq, value = first.strip().partition("=")
    name = name.strip()
    if not eq or not name:
        return None
    cookie: dict[str, Any] = {
        "name": name,
        "value": value.strip().removeprefix('"').removesuffix('"'),
        "domain": "",
        "path": "",
        "expires": _GO_ZERO_TIME,
        "max_age": timedelta(0),
        "secure": False,
        "http_only": False,
        "same_site": "",
        "unparsed_attributes": {},
    }
    for attribute in attributes:
        key, _, val = attribute.strip().partition("=")
        key, val = key.strip(), val.strip()
        low = key.lower()
        if not key:
            continue
        if low == "secure":
            cookie["secure"] = True
        elif low == "httponly":
            cookie["http_only"] = True
        elif low == "domain":
            cookie["domain"] = val.removeprefix(".")
        elif low == "path":
            cookie["path"] = val
        elif low == "samesite":
            cookie["same_site"] = _SAME_SITE.get(val.lower(), "")
        elif low == "max-age" and val.lstrip("-").isdigit():
            cookie["max_age"] = timedelta(seconds=int(val))
        elif low == "expires":
            try:
                cookie["expires"] = parsedate_to_datetime(val).astimezone(UTC)
            except (TypeError, ValueError):
                cookie["unparsed_attributes"][key] = val
        else:
            cookie["unparsed_attributes"][key] = val
    return cookie


# --- user agent -----------------------------------------------------------------


USER_AGENT_FIELDS: Fields = {
    "": itself,
    "name": lambda raw: parse_user_agent(raw).name,
    "version": lambda raw: parse_user_agent(raw).version,
    "os": lambda raw: parse_user_agent(raw).os,
    "os_version": lambda raw: parse_user_agent(raw).os_version,
    "device": lambda raw: parse_user_agent(raw).device,
    "is_bot": lambda raw: parse_user_agent(raw).is_bot,
    "is_mobile": lambda raw: parse_user_agent(raw).is_mobile,
    "is_tablet": lambda raw: parse_user_agent(raw).is_tablet,
    "is_desktop": lambda raw: parse_user_agent(raw).is_desktop,
    "url": lambda raw: parse_user_agent(raw).url,
}
"""The User-Agent parsed with the uap-core database (`policy.useragent`),
once per distinct string."""


# --- req.* -----------------------------------------------------------------------


class RequestSource:
    """The wire data `req.*` is built from; the header map is made once,
    when a field first needs it. `body_received` tells when the body was
    whole (None: not known yet)."""

    __slots__ = ("_headers", "body_received", "head", "received_at")

    def __init__(
        self,
        head: RequestHead,
        received_at: float,
        body_received: Callable[[], float | None] = lambda: None,
    ) -> None:
        self.head = head
        self.received_at = received_at
        self.body_received = body_received
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


def _user_agent(s: RequestSource) -> str:
    """Without a User-Agent header: '' and empty parsed fields, so
    `req.user_agent.is_bot` on a bare client is false, not an error."""
    values = s.headers.get("user-agent")
    return values[0] if values else ""


class RequestTimes(Mapping[str, datetime]):
    """`req.ts`: `header_received`, and `body_received` once the body is
    whole (read at each access: an action of the phase may read the body).
    A request without a body has it with its head; a streamed body is
    whole only after the policy's request phase, so there it is absent
    (the reference: "may be absent") unless an action read it."""

    __slots__ = ("_source",)

    def __init__(self, source: RequestSource) -> None:
        self._source = source

    def _body(self) -> float | None:
        s = self._source
        at = s.body_received()
        if at is None and not _has_body(s.headers):
            return s.received_at
        return at

    def __getitem__(self, key: str) -> datetime:
        if key == "header_received":
            return timestamp(self._source.received_at)
        if key == "body_received":
            at = self._body()
            if at is not None:
                return timestamp(at)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        yield "header_received"
        if self._body() is not None:
            yield "body_received"

    def __len__(self) -> int:
        return 1 + (self._body() is not None)


def _has_body(headers: Mapping[str, list[str]]) -> bool:
    if "transfer-encoding" in headers:
        return True
    length = headers.get("content-length")
    return length is not None and bool(length) and length[0].strip() not in ("", "0")


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
    "ts": RequestTimes,
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


def ip_fields(intel: IpIntelligence) -> Fields:
    """`conn.client_ip` / `conn.server_ip`: the address (its own value)
    and what the edge config's `ip_intelligence` knows of it; empty values
    for what it does not (traffic-policy.md, decisions)."""
    return {
        "": itself,
        "categories": lambda ip: intel.facts(ip).categories,
        "is_tor_node": lambda ip: intel.facts(ip).is_tor_node,
        "is_on_blocklist": lambda ip: intel.facts(ip).is_on_blocklist,
        "as": intel.asn,
        "geo": lambda ip: {
            "location": (geo := intel.geo(ip))["location"],
            "registered_location": geo["registered_location"],
        },
    }


_LEGACY_GEO = ("city", "country", "country_code", "latitude", "longitude", "radius", "subdivision")


def _legacy_geo(intel: IpIntelligence) -> Callable[[ConnectionInfo], dict[str, str]]:
    def geo(c: ConnectionInfo) -> dict[str, str]:
        where = intel.geo(c.client_ip)["location"]
        return {key: where[key] for key in _LEGACY_GEO}

    return geo


def _dn_fields() -> Fields:
    return {
        "": lambda n: n.text,
        "common_name": lambda n: n.common_name,
        "country": lambda n: list(n.country),
        "locality": lambda n: list(n.locality),
        "organization": lambda n: list(n.organization),
        "organizational_unit": lambda n: list(n.organizational_unit),
        "postal_code": lambda n: list(n.postal_code),
        "province": lambda n: list(n.province),
        "street_address": lambda n: list(n.street_address),
    }


def _extension(e: CertExtension) -> dict[str, Any]:
    return {"id": e.id, "critical": e.critical, "value": e.value}


def _san_text(c: ClientCert) -> str:
    return ",".join((*c.san_dns, *c.san_email, *c.san_ip, *c.san_uri))


EMPTY_CERT = ClientCert("", "", "", 0.0, 0.0)
"""No certificate: every field reads empty."""

CERT_FIELDS: Fields = {
    "subject": Nested(lambda c: c.subject_name, _dn_fields()),
    "issuer": Nested(lambda c: c.issuer_name, _dn_fields()),
    "serial_number": lambda c: c.serial_number,
    "signature_algorithm": lambda c: c.signature_algorithm,
    "san": Nested(
        lambda c: c,
        {
            "": _san_text,
            "dns_names": lambda c: list(c.san_dns),
            "email_addresses": lambda c: list(c.san_email),
            "ip_addresses": lambda c: list(c.san_ip),
            "uris": lambda c: list(c.san_uri),
        },
    ),
    "validity": lambda c: {
        "not_before": timestamp(c.not_before) if c.der else _GO_ZERO_TIME,
        "not_after": timestamp(c.not_after) if c.der else _GO_ZERO_TIME,
    },
    "extensions": lambda c: [_extension(e) for e in c.extensions],
    "pem": lambda c: c.pem,
}
"""A certificate (`conn.tls.client`, `conn.tls.server`); `EMPTY_CERT`
when there is none (plain HTTP, no client certificate)."""

NO_TLS = TlsInfo("", "", None, None)

# OpenSSL's names of the TLS 1.2 suites it offers -> the IANA names Go (and
# the public docs) use; TLS 1.3 names are the same in both.
_IANA_CIPHERS = {
    "ECDHE-ECDSA-AES128-GCM-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384": "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "ECDHE-RSA-CHACHA20-POLY1305": "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "DHE-RSA-AES128-GCM-SHA256": "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    "DHE-RSA-AES256-GCM-SHA384": "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    "DHE-RSA-CHACHA20-POLY1305": "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-AES128-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "ECDHE-RSA-AES128-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "ECDHE-ECDSA-AES256-SHA384": "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    "ECDHE-RSA-AES256-SHA384": "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    "AES128-GCM-SHA256": "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "AES256-GCM-SHA384": "TLS_RSA_WITH_AES_256_GCM_SHA384",
}


def _ja4(t: TlsInfo) -> str:
    return (native.ja4_fingerprint(t.client_hello) or "") if t.client_hello else ""


TLS_FIELDS: Fields = {
    # "1.3" as the public example compares it (`conn.tls.version < '1.3'`)
    "version": lambda t: t.version.removeprefix("TLSv"),
    "cipher_suite": lambda t: _IANA_CIPHERS.get(t.cipher, t.cipher),
    "sni": lambda t: t.server_name or "",
    "negotiated_alpn": lambda t: t.alpn or "",
    "session_resumed": lambda t: t.session_resumed,
    "ja4_fingerprint": _ja4,
    "client": Nested(lambda t: t.client_cert or EMPTY_CERT, CERT_FIELDS),
    "server": Nested(lambda t: t.server_cert or EMPTY_CERT, CERT_FIELDS),
}
"""`conn.tls`: empty values on a plain connection, and in `on_tcp_connect`
before the handshake."""


def tls_values(conn: ConnectionInfo) -> LazyMap:
    """`conn.tls` as policies read it (`actions.ngrok.terminate_tls` mirrors it)."""
    return LazyMap(conn.tls or NO_TLS, TLS_FIELDS)


K8S = {
    "pod": {
        "id": "",
        "metadata": {
            "name": "",
            "namespace": "",
            "annotations": {},
            "error_code": "",
            "error_message": "",
        },
    }
}
"""`conn.k8s`: only for Kubernetes-bound endpoints, which edgeward has not."""

LIVE_CONN_FIELDS = ("bytes_in", "bytes_out")
"""Read again at the start of each phase: they grow as the exchange goes."""


def conn_fields(intel: IpIntelligence = NO_IP_INTELLIGENCE) -> Fields:
    """`conn.*`, with the IP intelligence of the policy's edge config."""
    ip = ip_fields(intel)
    return {
        "client_ip": Nested(lambda c: c.client_ip, ip),
        "client_port": lambda c: c.client_port,
        "server_ip": Nested(lambda c: c.server_ip, ip),
        "server_port": lambda c: c.server_port,
        "server_region": lambda c: "",
        "bytes_in": lambda c: c.bytes_in,
        "bytes_out": lambda c: c.bytes_out,
        "ts": lambda c: {"start": timestamp(c.started_at), "end": _GO_ZERO_TIME},
        "tls": Nested(lambda c: c.tls or NO_TLS, TLS_FIELDS),
        "geo": _legacy_geo(intel),
        "k8s": lambda c: K8S,
    }


CONN_FIELDS: Fields = conn_fields()
"""`conn.*` without IP intelligence data."""


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
