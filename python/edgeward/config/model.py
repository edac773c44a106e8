"""The validated edge configuration: immutable, defaults filled in.

Everything the data plane reads at run time lives here; nothing here does
I/O. `load.py` builds it from a `Document`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from edgeward.document import Document
from edgeward.errors import Location
from edgeward.hooks import PolicyHooks
from edgeward.ipintel import EMPTY as EMPTY_IP_INTELLIGENCE
from edgeward.ipintel import IpIntelligence
from edgeward.secrets import Secrets
from edgeward.urlpath import EscapedSlashes

if TYPE_CHECKING:
    from edgeward.admin.sso.settings import SsoSettings

Network = IPv4Network | IPv6Network
UpstreamProtocol = Literal["http1", "http2"]
UPSTREAM_PROTOCOLS: tuple[UpstreamProtocol, ...] = ("http1", "http2")


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits; the defaults are safe for a public listener."""

    max_header_bytes: int = 64 * 1024  # request line + headers
    max_header_count: int = 100
    max_body_bytes: int = 100 * 1024 * 1024  # 0 = unlimited
    max_connections: int = 10_000  # per worker process
    h2_max_concurrent_streams: int = 100
    h2_max_resets: int = 200  # client RST_STREAMs per connection per reset window
    h2_reset_window: float = 10.0
    upstream_pool_size: int = 256  # idle keep-alive connections kept per upstream
    max_hook_body_bytes: int = 1024 * 1024  # cap for a policy's ReadBody


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. Each bounds one wait of the data plane."""

    header_read: float = 10.0  # from connection/previous response to a complete request head
    keep_alive: float = 60.0  # idle between requests (HTTP/1) / without streams (HTTP/2)
    body_read: float = 60.0  # between two chunks of a request body
    client_send: float = 60.0  # a client that reads nothing of a response for this long is dropped
    upstream_connect: float = 5.0
    upstream_response: float = 60.0  # request sent -> response head; also between body chunks
    upstream_idle: float = 30.0  # idle pooled upstream connection expiry
    drain: float = 30.0  # graceful shutdown: wait this long for in-flight requests


@dataclass(frozen=True, slots=True)
class OutboundAllowList:
    """`http_request: {allow_external: [...]}`: what the `http-request`
    action may call outside the edge. Nothing by default, so a policy cannot
    reach into the operator's network (SSRF). `hosts` are names (exact, or
    `*.example.com` for the names under it) whose addresses must be public;
    `networks` are address ranges allowed whatever the name."""

    hosts: tuple[str, ...] = ()
    networks: tuple[Network, ...] = ()


@dataclass(frozen=True, slots=True)
class AccessLog:
    enabled: bool = False
    path: Path | None = None  # None = standard output


@dataclass(frozen=True, slots=True)
class AdminListener:
    """`/metrics`, `/healthz`, `/readyz` on an address of its own (off by default)."""

    host: str
    port: int


@dataclass(frozen=True, slots=True)
class ApiListener:
    """`api:`: the admin API (docs/control-plane.md) on an address of its
    own, never the ops `admin:` listener; TLS when `tls` is given. Its audit
    events go to `audit_log` (stdout, stderr or files; empty: none); `events`
    are event destinations of the config (beside those of the API)."""

    host: str
    port: int
    tls: ListenerTls | None = None
    audit_log: tuple[str, ...] = ()
    # `events:`: static event destinations, each with its subscription
    # ({name, format, target, sources, filter}, validated by edgeward.events.spec).
    events: tuple[Mapping[str, Any], ...] = ()
    sso: SsoSettings | None = None  # `api.sso`: console/API sign-in (edgeward.admin.sso)


@dataclass(frozen=True, slots=True)
class IpPolicy:
    """A named allow/deny list, referenced by policies (`ip_policies:`)."""

    name: str
    allow: tuple[Network, ...] = ()
    deny: tuple[Network, ...] = ()


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    """The `identity:` section: the auth host whose `/oauth2/callback` is the
    redirect URI registered at identity providers, the keys that seal
    session cookies, and where sessions live (docs/identity.md)."""

    auth_host: str  # host[:port] as browsers reach it
    keys_file: Path
    session_store: str = "memory"  # memory | sqlite:<absolute path> | redis://...
    listeners: tuple[str, ...] = ()  # the listeners serving the auth host
    # Test-only: accept http:// issuers and provider URLs on loopback hosts.
    allow_insecure_loopback_issuer: bool = False
    # Replaced provider base URLs: (name, web, api), for local test servers.
    providers: tuple[tuple[str, str | None, str | None], ...] = ()
    location: Location = field(default_factory=Location, compare=False)


@dataclass(frozen=True, slots=True)
class PolicySource:
    """A traffic policy as written: raw data and where it came from. The
    policy layer compiles it (see `PolicyFactory`); `document.locate(path)`
    names file, line and key for its errors."""

    document: Document
    origin: Location  # the `traffic_policy(_file)` key that brought it in
    owner: str  # "endpoint app" / "listener public"
    # The edge config's `http_request` (what http-request may call).
    http_request: OutboundAllowList = field(default=OutboundAllowList(), kw_only=True)
    # The edge config's `owasp_crs.rules_dir` (the OWASP CRS actions' rules);
    # None: the default (Debian's modsecurity-crs package).
    owasp_crs_rules_dir: str | None = field(default=None, kw_only=True)
    # Where decision events go: the edge config's `events:` ("stdout",
    # "stderr", absolute file paths; () for none); None when it says nothing.
    events: tuple[str, ...] | None = None
    # The edge's `identity:` section (oauth / openid-connect need it).
    identity: IdentityConfig | None = None
    # "identity-auth-host": not a document but the auth host's built-in hooks.
    builtin: str | None = None
    # What `secrets.get` reads: the edge config's `secrets:` (empty when it
    # has none); None when unknown (a policy compiled without an edge config).
    secrets: Secrets | None = field(default=None, repr=False)
    # What `conn.*_ip.{geo,as,categories...}` read: the edge config's
    # `ip_intelligence:` (empty when it has none); None when unknown.
    ip_intelligence: IpIntelligence | None = field(default=None, repr=False)


class PolicyFactory(Protocol):
    """Compiles a policy; raises `ConfigError` (or another `EdgewardError`
    carrying a location) when it is invalid."""

    def __call__(
        self, source: PolicySource, ip_policies: Mapping[str, IpPolicy]
    ) -> PolicyHooks: ...


@dataclass(frozen=True, slots=True)
class Certificate:
    cert: Path
    key: Path
    hostnames: tuple[str, ...]  # from the certificate's SAN/CN, lower-case; "*.x" wildcards


@dataclass(frozen=True, slots=True)
class ListenerTls:
    certificates: tuple[Certificate, ...]  # the first one is the default (no/unknown SNI)
    client_ca: Path | None = None  # mTLS: verify client certificates against this bundle
    client_cert: Literal["required", "optional"] = "required"


@dataclass(frozen=True, slots=True)
class Listener:
    name: str
    host: str
    port: int
    tls: ListenerTls | None = None
    http2: bool = True  # h2 via ALPN (TLS) or prior knowledge (cleartext)
    policy_source: PolicySource | None = None
    policy: PolicyHooks | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where an endpoint's traffic goes: HTTP/1.1 over TCP, TLS or a unix
    socket, or HTTP/2 (`protocol: http2`: prior-knowledge h2c to http://,
    ALPN h2 to https://), which gRPC services need."""

    url: str  # as configured
    scheme: Literal["http", "https", "unix"]
    host: str  # for unix: the socket path
    port: int
    tls_verify: bool = True
    tls_ca: Path | None = None
    tls_server_name: str | None = None
    protocol: UpstreamProtocol = "http1"

    @property
    def authority(self) -> str:
        if self.scheme == "unix":
            return "localhost"
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    hostname: str  # lower-case; "*.example.com" matches any subdomain
    upstream: Upstream
    listeners: tuple[str, ...]  # names of the listeners serving it
    host_header: str = "preserve"  # "preserve", "upstream", or a literal value
    metadata: Mapping[str, str] = field(default_factory=dict)
    policy_source: PolicySource | None = None
    policy: PolicyHooks | None = None
    # %2F, %5C and "\" in request paths: refused, kept, or read as "/" (edgeward.urlpath)
    escaped_slashes: EscapedSlashes = "reject"

    @property
    def is_wildcard(self) -> bool:
        return self.hostname.startswith("*.")

    @property
    def internal(self) -> bool:
        """An internal endpoint (`*.internal`): on no listener, reachable only
        through `forward-internal` (docs/agents.md)."""
        return is_internal(self.hostname)


def is_internal(hostname: str) -> bool:
    """Whether a (lower-case) hostname names an internal endpoint."""
    return hostname.endswith(".internal")


@dataclass(frozen=True, slots=True)
class AgentTcp:
    """Where tcp endpoints bound by agents listen: `listen_host` and a port
    from `ports` (inclusive), published as `tcp://<host>:<port>`."""

    listen_host: str
    ports: tuple[int, int]
    host: str


@dataclass(frozen=True, slots=True)
class AgentIngress:
    """`agent_ingress:`: the TLS listener agents connect to, and what they
    may bind (docs/agents.md). `policy` runs `on_tcp_connect` on every agent
    connection (restrict-ips: where agents may connect from)."""

    host: str
    port: int
    tls: ListenerTls
    # Public hostnames agents may bind: exact names and "*.suffix" (any
    # depth); `.internal` names need no entry. Empty: internal endpoints only.
    domains: tuple[str, ...] = ()
    listeners: tuple[str, ...] = ()  # where agents' http/https endpoints are served
    tcp: AgentTcp | None = None  # None: no tcp endpoints
    grace_period: float = 10.0  # a dropped agent's endpoints stay reserved for its authtoken
    policy_source: PolicySource | None = None
    policy: PolicyHooks | None = None
    location: Location = field(default_factory=Location, compare=False)


@dataclass(frozen=True, slots=True)
class ForwardedTrust:
    """Peers whose incoming X-Forwarded-* / Forwarded headers are kept (and
    appended to); from anyone else they are replaced."""

    trusted: tuple[Network, ...] = ()


@dataclass(frozen=True, slots=True)
class EdgeConfig:
    file: str
    listeners: tuple[Listener, ...]
    endpoints: tuple[Endpoint, ...]
    limits: Limits = Limits()
    timeouts: Timeouts = Timeouts()
    access_log: AccessLog = AccessLog()
    http_request: OutboundAllowList = OutboundAllowList()
    owasp_crs_rules_dir: Path | None = None  # `owasp_crs: {rules_dir: ...}`
    events: tuple[str, ...] | None = None  # policy decision events (see PolicySource.events)
    forwarded: ForwardedTrust = ForwardedTrust()
    ip_policies: Mapping[str, IpPolicy] = field(default_factory=dict)
    secrets: Secrets = field(default_factory=Secrets, repr=False)  # `secrets:`
    # `ip_intelligence:` loaded (geo/ASN databases, category lists); empty
    # when the section is absent.
    ip_intelligence: IpIntelligence = field(default=EMPTY_IP_INTELLIGENCE, repr=False)
    # The state store's directory (authtokens), absolute; None: the default
    # (`edgeward.store.statedir.resolve`: EDGEWARD_STATE_DIR, else
    # $XDG_STATE_HOME/edgeward, else ~/.local/state/edgeward).
    state_dir: Path | None = None
    # `store_url:` a database for the store instead of SQLite in state_dir
    # (PostgreSQL for several nodes); the deployment secret stays in state_dir.
    store_url: str | None = None
    identity: IdentityConfig | None = None
    admin: AdminListener | None = None
    agent_ingress: AgentIngress | None = None
    api: ApiListener | None = None
    raw: Any = None  # the parsed document, for diagnostics
