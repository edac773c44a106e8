"""The ngrok agent protocol's messages: stream types, the JSON RPC bodies,
the Proxy stream header, heartbeat durations.

Decoding is lenient where the SDKs differ and strict where they agree: keys
are matched case-insensitively at every level (Go decodes JSON that way, and
the Go SDK spells `Authtoken` and `LocalURLScheme` where the Rust SDK says
`AuthToken` and `LocalUrlScheme`); a missing field takes its zero value; a
field of the wrong type is a `MessageError` naming it. The responses a
client reads are decoded as the Rust SDK does: the fields it requires
(`AuthResp.Version`, `BindResp.Extra.Token`, ...) must be there.

Encoding writes the names the Rust SDK expects: serde matches them exactly.
Bind options keep every key they do not model (legacy middleware), so a
BindResp can echo a Bind's options, which is what the SDK needs back.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from enum import IntEnum
from json.encoder import encode_basestring_ascii as _quote  # the C escaper
from typing import Any

from edgeward.tunnel.errors import MessageError, RpcError

# --- stream types -------------------------------------------------------------------


class StreamType(IntEnum):
    """The u32 a stream's opener writes first."""

    AUTH = 0  # client → server, RPC
    BIND = 1  # client → server, RPC
    UNBIND = 2  # client → server, RPC
    PROXY = 3  # server → client: ProxyHeader, then raw bytes both ways
    RESTART = 4  # server → client, command
    STOP = 5  # server → client, command
    UPDATE = 6  # server → client, command
    BIND_LABELED = 7  # client → server, RPC (labeled edges; not supported here)
    SRV_INFO = 8  # client → server, RPC (Go SDK only; not supported here)
    STOP_TUNNEL = 9  # server → client, no response
    HEARTBEAT = 0xFFFFFFFF  # either way: 4-byte ids echoed


PROTOCOL_VERSIONS = ("3", "2")  # what a client offers, in order of preference
NOT_SUPPORTED = "the agent has not defined a callback for this operation"

# --- reading JSON with case-insensitive keys ----------------------------------------------


class _Fields:
    """One JSON object, keys folded to lower case, with typed getters whose
    errors name the field."""

    __slots__ = ("_values", "raw", "where")

    def __init__(self, value: object, where: str) -> None:
        if not isinstance(value, dict):
            raise MessageError(where, f"expected an object, got {_kind(value)}")
        self.raw: dict[str, Any] = value
        self._values = {str(k).lower(): v for k, v in value.items()}
        self.where = where

    def _get(self, key: str, required: bool) -> Any:
        value = self._values.get(key.lower())
        if value is None and required:
            raise MessageError(f"{self.where}.{key}", "required")
        return value

    def _wrong(self, key: str, expected: str, value: object) -> MessageError:
        return MessageError(f"{self.where}.{key}", f"expected {expected}, got {_kind(value)}")

    def text(self, key: str, *, required: bool = False) -> str:
        value = self._get(key, required)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self._wrong(key, "a string", value)
        return value

    def opt_text(self, key: str) -> str | None:
        value = self._get(key, False)
        if value is not None and not isinstance(value, str):
            raise self._wrong(key, "a string or null", value)
        return value

    def flag(self, key: str, *, required: bool = False) -> bool:
        value = self._get(key, required)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self._wrong(key, "true or false", value)
        return value

    def integer(self, key: str, *, required: bool = False) -> int:
        value = self._get(key, required)
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(key, "an integer", value)
        return value

    def opt_integer(self, key: str) -> int | None:
        value = self._get(key, False)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise self._wrong(key, "an integer or null", value)
        return value

    def texts(self, key: str) -> list[str]:
        value = self._get(key, False)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._wrong(key, "a list of strings", value)
        return value

    def obj(self, key: str, *, required: bool = False) -> _Fields:
        value = self._get(key, required)
        return _Fields({} if value is None else value, f"{self.where}.{key}")

    def policy(self, key: str) -> str | None:
        """A traffic policy: a JSON/YAML string, or (legacy) an object, which
        the Rust SDK would itself send as its JSON text."""
        value = self._get(key, False)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, dict):
            return json.dumps(value)
        raise self._wrong(key, "a string or an object", value)

    def others(self, known: frozenset[str]) -> dict[str, Any]:
        """The keys not modelled, with their original spelling."""
        return {k: v for k, v in self.raw.items() if k.lower() not in known}


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def parse_json(body: bytes, where: str) -> object:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessageError(where, f"not JSON: {exc}") from None


def dump(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


# --- Auth -----------------------------------------------------------------------------


@dataclass(slots=True)
class AuthExtra:
    os: str = ""
    arch: str = ""
    authtoken: str = field(default="", repr=False)
    version: str = ""
    hostname: str = ""
    user_agent: str = ""
    metadata: str = ""
    cookie: str = field(default="", repr=False)
    heartbeat_interval: int = 0  # nanoseconds
    heartbeat_tolerance: int = 0  # nanoseconds
    # capabilities: None = too old to say, "" = supported, text = why not
    update_unsupported_error: str | None = None
    stop_unsupported_error: str | None = None
    restart_unsupported_error: str | None = None
    proxy_type: str = ""
    mutual_tls: bool = False
    service_run: bool = False
    config_version: str = ""
    custom_interface: bool = False
    custom_cas: bool = False
    client_type: str = ""


@dataclass(slots=True)
class Auth:
    version: list[str] = field(default_factory=lambda: list(PROTOCOL_VERSIONS))
    client_id: str = ""  # empty for a new session, the old id on reconnect
    extra: AuthExtra = field(default_factory=AuthExtra)

    def encode(self) -> bytes:
        e = self.extra
        return dump(
            {
                "Version": self.version,
                "ClientId": self.client_id,
                "Extra": {
                    "OS": e.os,
                    "Arch": e.arch,
                    "AuthToken": e.authtoken,
                    "Version": e.version,
                    "Hostname": e.hostname,
                    "UserAgent": e.user_agent,
                    "Metadata": e.metadata,
                    "Cookie": e.cookie,
                    "HeartbeatInterval": e.heartbeat_interval,
                    "HeartbeatTolerance": e.heartbeat_tolerance,
                    "UpdateUnsupportedError": e.update_unsupported_error,
                    "StopUnsupportedError": e.stop_unsupported_error,
                    "RestartUnsupportedError": e.restart_unsupported_error,
                    "ProxyType": e.proxy_type,
                    "MutualTLS": e.mutual_tls,
                    "ServiceRun": e.service_run,
                    "ConfigVersion": e.config_version,
                    "CustomInterface": e.custom_interface,
                    "CustomCAs": e.custom_cas,
                    "ClientType": e.client_type,
                },
            }
        )

    @classmethod
    def decode(cls, body: bytes) -> Auth:
        return cls.from_json(parse_json(body, "Auth"))

    @classmethod
    def from_json(cls, value: object) -> Auth:
        f = _Fields(value, "Auth")
        x = f.obj("Extra")
        extra = AuthExtra(
            os=x.text("OS"),
            arch=x.text("Arch"),
            authtoken=x.text("AuthToken"),  # Go: Authtoken; the keys are case-folded
            version=x.text("Version"),
            hostname=x.text("Hostname"),
            user_agent=x.text("UserAgent"),
            metadata=x.text("Metadata"),
            cookie=x.text("Cookie"),
            heartbeat_interval=x.integer("HeartbeatInterval"),
            heartbeat_tolerance=x.integer("HeartbeatTolerance"),
            update_unsupported_error=x.opt_text("UpdateUnsupportedError"),
            stop_unsupported_error=x.opt_text("StopUnsupportedError"),
            restart_unsupported_error=x.opt_text("RestartUnsupportedError"),
            proxy_type=x.text("ProxyType"),
            mutual_tls=x.flag("MutualTLS"),
            service_run=x.flag("ServiceRun"),
            config_version=x.text("ConfigVersion"),
            custom_interface=x.flag("CustomInterface"),
            custom_cas=x.flag("CustomCAs"),
            client_type=x.text("ClientType"),
        )
        return cls(f.texts("Version"), f.text("ClientId"), extra)


@dataclass(slots=True)
class AuthRespExtra:
    version: str | None = None
    region: str | None = None
    cookie: str | None = field(default=None, repr=False)  # sent back in Auth.Extra.Cookie
    account_name: str | None = None
    session_duration: int | None = None
    plan_name: str | None = None
    banner: str | None = None


@dataclass(slots=True)
class AuthResp:
    version: str  # the protocol version chosen, e.g. "3"
    client_id: str  # the session id; the client sends it back on reconnect
    extra: AuthRespExtra = field(default_factory=AuthRespExtra)

    def encode(self) -> bytes:
        e = self.extra
        extra = {
            "Version": e.version,
            "Region": e.region,
            "Cookie": e.cookie,
            "AccountName": e.account_name,
            "SessionDuration": e.session_duration,
            "PlanName": e.plan_name,
            "Banner": e.banner,
        }
        return dump(
            {
                "Version": self.version,
                "ClientId": self.client_id,
                "Extra": {k: v for k, v in extra.items() if v is not None},
            }
        )

    @classmethod
    def decode(cls, body: bytes) -> AuthResp:
        f = _response_fields(body, "AuthResp")
        x = f.obj("Extra")
        return cls(
            f.text("Version", required=True),
            f.text("ClientId", required=True),
            AuthRespExtra(
                version=x.opt_text("Version"),
                region=x.opt_text("Region"),
                cookie=x.opt_text("Cookie"),
                account_name=x.opt_text("AccountName"),
                session_duration=x.opt_integer("SessionDuration"),
                plan_name=x.opt_text("PlanName"),
                banner=x.opt_text("Banner"),
            ),
        )


# --- Bind options -----------------------------------------------------------------------


@dataclass(slots=True)
class HttpOpts:
    """Options of an http/https endpoint. The SDK sends its domain in
    `Domain` (1.7.0) or `Hostname` (1.4.0): `requested_domain` reads both."""

    domain: str = ""
    hostname: str = ""
    subdomain: str = ""
    auth: str = ""
    host_header_rewrite: bool = False
    local_url_scheme: str | None = None
    proxy_proto: int = 0
    traffic_policy: str | None = None
    url: str = ""  # Go SDK / agent config v3: the endpoint's URL
    others: dict[str, Any] = field(default_factory=dict)

    @property
    def requested_domain(self) -> str:
        return self.domain or self.hostname

    def to_json(self) -> dict[str, Any]:
        out = dict(self.others)
        out.update(
            Domain=self.domain,
            Hostname=self.hostname,
            Auth=self.auth,
            Subdomain=self.subdomain,
            HostHeaderRewrite=self.host_header_rewrite,
            LocalUrlScheme=self.local_url_scheme,
            ProxyProto=self.proxy_proto,
            TrafficPolicy=self.traffic_policy,
        )
        if self.url:
            out["URL"] = self.url
        return out

    @classmethod
    def from_fields(cls, f: _Fields) -> HttpOpts:
        return cls(
            domain=f.text("Domain"),
            hostname=f.text("Hostname"),
            subdomain=f.text("Subdomain"),
            auth=f.text("Auth"),
            host_header_rewrite=f.flag("HostHeaderRewrite"),
            local_url_scheme=f.opt_text("LocalUrlScheme"),
            proxy_proto=_proxy_proto(f),
            traffic_policy=f.policy("TrafficPolicy"),
            url=f.text("URL"),
            others=f.others(_HTTP_KEYS),
        )


@dataclass(slots=True)
class TcpOpts:
    addr: str = ""  # "host:port" requested, "" for any
    proxy_proto: int = 0
    traffic_policy: str | None = None
    url: str = ""
    others: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = dict(self.others)
        out.update(Addr=self.addr, ProxyProto=self.proxy_proto, TrafficPolicy=self.traffic_policy)
        if self.url:
            out["URL"] = self.url
        return out

    @classmethod
    def from_fields(cls, f: _Fields) -> TcpOpts:
        return cls(
            addr=f.text("Addr"),
            proxy_proto=_proxy_proto(f),
            traffic_policy=f.policy("TrafficPolicy"),
            url=f.text("URL"),
            others=f.others(_TCP_KEYS),
        )


@dataclass(slots=True)
class TlsOpts:
    domain: str = ""
    hostname: str = ""
    subdomain: str = ""
    proxy_proto: int = 0
    mutual_tls_at_agent: bool = False
    traffic_policy: str | None = None
    url: str = ""
    others: dict[str, Any] = field(default_factory=dict)  # TLSTermination, MutualTLSAtEdge, ...

    @property
    def requested_domain(self) -> str:
        return self.domain or self.hostname

    def to_json(self) -> dict[str, Any]:
        out = dict(self.others)
        out.update(
            Domain=self.domain,
            Hostname=self.hostname,
            Subdomain=self.subdomain,
            ProxyProto=self.proxy_proto,
            MutualTLSAtAgent=self.mutual_tls_at_agent,
            TrafficPolicy=self.traffic_policy,
        )
        if self.url:
            out["URL"] = self.url
        return out

    @classmethod
    def from_fields(cls, f: _Fields) -> TlsOpts:
        return cls(
            domain=f.text("Domain"),
            hostname=f.text("Hostname"),
            subdomain=f.text("Subdomain"),
            proxy_proto=_proxy_proto(f),
            mutual_tls_at_agent=f.flag("MutualTLSAtAgent"),
            traffic_policy=f.policy("TrafficPolicy"),
            url=f.text("URL"),
            others=f.others(_TLS_KEYS),
        )


BindOpts = HttpOpts | TcpOpts | TlsOpts
_HTTP_KEYS = frozenset(
    [
        "domain",
        "hostname",
        "subdomain",
        "auth",
        "hostheaderrewrite",
        "localurlscheme",
        "proxyproto",
        "trafficpolicy",
        "url",
    ]
)
_TCP_KEYS = frozenset(["addr", "proxyproto", "trafficpolicy", "url"])
_TLS_KEYS = frozenset(
    ["domain", "hostname", "subdomain", "proxyproto", "mutualtlsatagent", "trafficpolicy", "url"]
)
_OPTS_BY_PROTO: dict[str, type[HttpOpts] | type[TcpOpts] | type[TlsOpts]] = {
    "http": HttpOpts,
    "https": HttpOpts,
    "tcp": TcpOpts,
    "tls": TlsOpts,
}


def _proxy_proto(f: _Fields) -> int:
    value = f.integer("ProxyProto")
    if value not in (0, 1, 2):
        raise MessageError(f"{f.where}.ProxyProto", f"expected 0, 1 or 2, got {value}")
    return value


def _opts(f: _Fields, proto: str, where: str) -> BindOpts:
    kind = _OPTS_BY_PROTO.get(proto.lower())
    if kind is None:
        raise MessageError(f"{where}.Proto", f"unsupported protocol {proto!r}")
    return kind.from_fields(f.obj("Opts"))


# --- Bind / Unbind ---------------------------------------------------------------------


@dataclass(slots=True)
class BindExtra:
    token: str = field(default="", repr=False)  # from BindResp.Extra.Token, sent on re-bind
    ip_policy_ref: str = ""
    metadata: str = ""
    bindings: list[str] = field(default_factory=list)  # "public", "internal", ...
    pooling_enabled: bool = False  # absent before SDK 1.7.0
    name: str = ""  # Go SDK / agent config v3
    description: str = ""


@dataclass(slots=True)
class Bind:
    proto: str  # "http", "https", "tcp", "tls"
    opts: BindOpts
    id: str = ""  # empty on the first bind, the old endpoint id on re-bind
    forwards_to: str = ""
    forwards_proto: str = ""
    extra: BindExtra = field(default_factory=BindExtra)

    def encode(self) -> bytes:
        e = self.extra
        extra: dict[str, Any] = {
            "Token": e.token,
            "IPPolicyRef": e.ip_policy_ref,
            "Metadata": e.metadata,
            "Bindings": e.bindings,
            "PoolingEnabled": e.pooling_enabled,
        }
        if e.name:
            extra["Name"] = e.name
        if e.description:
            extra["Description"] = e.description
        return dump(
            {
                "Id": self.id,
                "Proto": self.proto,
                "ForwardsTo": self.forwards_to,
                "ForwardsProto": self.forwards_proto,
                "Opts": self.opts.to_json(),
                "Extra": extra,
            }
        )

    @classmethod
    def decode(cls, body: bytes) -> Bind:
        return cls.from_json(parse_json(body, "Bind"))

    @classmethod
    def from_json(cls, value: object) -> Bind:
        f = _Fields(value, "Bind")
        proto = f.text("Proto")
        x = f.obj("Extra")
        return cls(
            proto=proto,
            opts=_opts(f, proto, "Bind"),
            id=f.text("Id"),
            forwards_to=f.text("ForwardsTo"),
            forwards_proto=f.text("ForwardsProto"),
            extra=BindExtra(
                token=x.text("Token"),
                ip_policy_ref=x.text("IPPolicyRef"),
                metadata=x.text("Metadata"),
                bindings=x.texts("Bindings"),
                pooling_enabled=x.flag("PoolingEnabled"),
                name=x.text("Name"),
                description=x.text("Description"),
            ),
        )


@dataclass(slots=True)
class BindResp:
    id: str  # the endpoint id: Proxy headers name it, Unbind sends it
    url: str  # what the SDK reports as listener.url(), verbatim
    proto: str
    opts: BindOpts  # echoing the Bind's options is what the SDK needs
    token: str = field(default="", repr=False)  # sent back in Bind.Extra.Token on re-bind

    def encode(self) -> bytes:
        return dump(
            {
                "Id": self.id,
                "URL": self.url,
                "Proto": self.proto,
                "Opts": self.opts.to_json(),
                "Extra": {"Token": self.token},
            }
        )

    @classmethod
    def decode(cls, body: bytes) -> BindResp:
        f = _response_fields(body, "BindResp")
        proto = f.text("Proto", required=True)
        f.obj("Opts", required=True)
        return cls(
            id=f.text("Id", required=True),
            url=f.text("URL", required=True),
            proto=proto,
            opts=_opts(f, proto, "BindResp"),
            token=f.obj("Extra", required=True).text("Token", required=True),
        )


@dataclass(slots=True)
class Unbind:
    id: str

    def encode(self) -> bytes:
        return dump({"Id": self.id})

    @classmethod
    def decode(cls, body: bytes) -> Unbind:
        return cls.from_json(parse_json(body, "Unbind"))

    @classmethod
    def from_json(cls, value: object) -> Unbind:
        return cls(_Fields(value, "Unbind").text("Id"))


UNBIND_RESP = b"{}"


def decode_unbind_resp(body: bytes) -> None:
    _response_fields(body, "UnbindResp")


# --- server → client: commands, StopTunnel -------------------------------------------------


@dataclass(slots=True)
class StopTunnel:
    """The server closes one endpoint: no response; the SDK then sends Unbind."""

    id: str
    message: str = ""
    error_code: str | None = None

    def encode(self) -> bytes:
        return dump({"Id": self.id, "Message": self.message, "ErrorCode": self.error_code})

    @classmethod
    def decode(cls, body: bytes) -> StopTunnel:
        return cls.from_json(parse_json(body, "StopTunnel"))

    @classmethod
    def from_json(cls, value: object) -> StopTunnel:
        f = _Fields(value, "StopTunnel")
        return cls(f.text("Id"), f.text("Message"), f.opt_text("ErrorCode"))


def encode_command(stream_type: StreamType, version: str = "", permit_major: bool = False) -> bytes:
    """The body of a Restart, Stop or Update command."""
    if stream_type == StreamType.UPDATE:
        return dump({"Version": version, "PermitMajorVersion": permit_major})
    return b"{}"


def encode_command_resp(error: str | None) -> bytes:
    return b"{}" if error is None else dump({"Error": error})


def decode_command_resp(body: bytes) -> str | None:
    """The error a command was answered with, None for success."""
    return _Fields(parse_json(body, "CommandResp"), "CommandResp").opt_text("Error") or None


# --- RPC errors --------------------------------------------------------------------------


def encode_error(error: RpcError) -> bytes:
    return dump({"Error": error.to_text()})


def _response_fields(body: bytes, where: str) -> _Fields:
    """A response, decoded as the SDK does: a non-empty `Error` wins."""
    value = parse_json(body, where)
    if isinstance(value, dict):
        error = value.get("Error")
        if isinstance(error, str) and error:
            raise RpcError.from_text(error)
    return _Fields(value, where)


# --- Proxy stream header -----------------------------------------------------------------

_I64LE = struct.Struct("<q")
_PROXY_HEADER_JSON = '{"Id":%s,"ClientAddr":%s,"Proto":%s,"EdgeType":%s,"PassthroughTLS":%s}'
MAX_PROXY_HEADER = 64 * 1024


class EdgeType:
    """`ProxyHeader.EdgeType` values (strings on the wire)."""

    UNDEFINED = ""
    TCP = "1"
    TLS = "2"
    HTTPS = "3"


@dataclass(slots=True)
class ProxyHeader:
    """What the server writes at the start of a Proxy stream, after its type."""

    id: str  # the endpoint id from BindResp: the SDK drops a stream naming another
    client_addr: str  # "ip:port" of the client the edge accepted
    proto: str  # "http", "https", "tcp", "tls"
    edge_type: str = EdgeType.UNDEFINED
    passthrough_tls: bool = False

    def encode(self) -> bytes:
        """The i64 little-endian length, then the JSON (written by hand: one
        per request, and `json.dumps` of a dict costs several times more)."""
        body = _PROXY_HEADER_JSON % (
            _quote(self.id),
            _quote(self.client_addr),
            _quote(self.proto),
            _quote(self.edge_type),
            "true" if self.passthrough_tls else "false",
        )
        data = body.encode()
        return _I64LE.pack(len(data)) + data

    @classmethod
    def decode_body(cls, body: bytes) -> ProxyHeader:
        value = parse_json(body, "ProxyHeader")
        if type(value) is dict:  # the usual spelling, read directly (one per request)
            got = (
                value.get("Id"),
                value.get("ClientAddr"),
                value.get("Proto"),
                value.get("EdgeType"),
                value.get("PassthroughTLS"),
            )
            if all(type(v) is str for v in got[:4]) and type(got[4]) is bool:
                return cls(*got)  # type: ignore[arg-type]
        f = _Fields(value, "ProxyHeader")
        return cls(
            id=f.text("Id", required=True),
            client_addr=f.text("ClientAddr", required=True),
            proto=f.text("Proto", required=True),
            edge_type=f.text("EdgeType", required=True),
            passthrough_tls=f.flag("PassthroughTLS", required=True),
        )


class ProxyHeaderReader:
    """Reads a ProxyHeader from the front of a Proxy stream's data."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> tuple[ProxyHeader, bytes] | None:
        """The header and the payload after it, once complete; else None."""
        buf = self._buf = self._buf + data
        if len(buf) < 8:
            return None
        (size,) = _I64LE.unpack_from(buf)
        if not 0 <= size <= MAX_PROXY_HEADER:
            raise MessageError("ProxyHeader", f"length {size} out of range")
        if len(buf) < 8 + size:
            return None
        self._buf = b""
        return ProxyHeader.decode_body(buf[8 : 8 + size]), buf[8 + size :]


# --- heartbeat durations ----------------------------------------------------------------


def seconds_to_ns(seconds: float) -> int:
    return round(seconds * 1_000_000_000)


def ns_to_seconds(ns: int) -> float:
    return ns / 1_000_000_000
