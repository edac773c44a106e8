"""The edge's book of agents: sessions, the endpoints they published, which
agent serves which endpoint, and what a dropped agent leaves reserved.
Sans-IO and trio-free: the ingress (`edgeward.proxy.agent_ingress`) feeds it
decisions to make and times, and does the I/O it asks for.

An endpoint is published once per URL (`Published`) and served by one or
more agents (`Binding`s: one per session, each with the endpoint id that
session knows it by). With `pooling_enabled` on every binding, several
agents share it and one is picked at random per request (per connection
for tcp and tls); without it a second bind is refused (ERR_NGROK_334).

When a session ends without unbinding (a crash, a lost connection), its
endpoints stay *reserved* for its authtoken for `grace_period` seconds:
requests get 503 ERR_EDGEWARD_3209 at once (never a hang), a bind of the
same URL by another authtoken is refused, and the same authtoken's next
bind takes the endpoint back (with its old endpoint id when the agent
sends it, as the ngrok SDKs do on reconnect). An explicit unbind, and a
revoked authtoken, withdraw at once.

Routing: http/https endpoints become `edgeward.config.Endpoint`s that each
public listener's router falls back to (`ListenerRoutes`) after the edge
config's own endpoints, which agents can never shadow (a bind of a name the
config serves is refused, ERR_NGROK_381). Internal endpoints (`.internal`)
are on no listener: only `forward-internal` reaches them (`internal`).
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from edgeward.agents.targets import (
    ERR_AUTH,
    ERR_BAD_URL,
    ERR_NOT_AGENT_DOMAIN,
    ERR_ONLINE,
    ERR_POLICY,
    ERR_RESERVED,
    Kind,
    Target,
    requested,
)
from edgeward.authtokens import AddressBind, Decision, HostBind
from edgeward.config import AgentTcp, Endpoint, Upstream, is_internal
from edgeward.errors import EdgewardError
from edgeward.hooks import EndpointInfo, PolicyHooks
from edgeward.tunnel.errors import RpcError
from edgeward.tunnel.messages import Auth, Bind, BindResp, EdgeType

H = TypeVar("H")  # the ingress's handle of a session (its tunnel)

EDGE_TYPES = {"http": EdgeType.HTTPS, "https": EdgeType.HTTPS, "tcp": EdgeType.TCP}
EDGE_TYPES["tls"] = EdgeType.TLS
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"


def new_id(prefix: str, size: int = 20) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(size))


@dataclass(frozen=True, slots=True)
class ServedListener:
    """A listener agents' http/https endpoints are served on."""

    name: str
    scheme: str  # "http" or "https"
    port: int


@dataclass(frozen=True, slots=True)
class Settings:
    """What the edge config says about agents (rebuilt on reload)."""

    domains: tuple[str, ...] = ()
    listeners: tuple[ServedListener, ...] = ()
    tcp: AgentTcp | None = None
    grace_period: float = 10.0


@dataclass(eq=False, slots=True)
class AgentSession(Generic[H]):
    id: str
    authtoken: Any  # authtokens.snapshot.Authtoken
    client_addr: str
    handle: H
    auth: Auth
    bindings: dict[str, Binding[H]] = field(default_factory=dict)  # by endpoint id
    closed: bool = False
    started_at: float = field(default_factory=time.time)  # wall clock (the admin API shows it)


@dataclass(eq=False, slots=True)
class Binding(Generic[H]):
    """One agent serving one published endpoint."""

    id: str  # the endpoint id this session knows (ProxyHeader.Id, Unbind)
    token: str  # BindResp.Extra.Token: proves a re-bind after reconnect
    session: AgentSession[H]
    published: Published[H]
    proto: str  # the Bind's Proto, echoed in ProxyHeader.Proto


@dataclass(eq=False, slots=True)
class Published(Generic[H]):
    """An endpoint agents published: one URL, its policy, its agents."""

    name: str  # "agent:<id>": the Endpoint name routers and pools know it by
    kind: Kind
    url: str  # the public URL, as the agent is told
    host: str
    port: int
    authtoken_id: str
    pooling: bool
    policy_text: str | None
    policy: PolicyHooks | None
    forwards_to: str
    endpoint: Endpoint | None = None  # http/https/tls: what routers return
    infos: dict[str, EndpointInfo] = field(default_factory=dict)  # by listener name ("" internal)
    members: list[Binding[H]] = field(default_factory=list)
    reserved_until: float | None = None  # no agent: reserved for authtoken_id until then
    former_ids: dict[str, str] = field(default_factory=dict)  # endpoint id -> token, for re-binds
    listener: object = None  # tcp: the ingress's listening socket

    @property
    def internal(self) -> bool:
        return is_internal(self.host)

    @property
    def online(self) -> bool:
        return bool(self.members)

    def pick(self) -> Binding[H] | None:
        """One of its agents, at random (pooling), or None when offline."""
        members = self.members
        if not members:
            return None
        return members[0] if len(members) == 1 else random.choice(members)

    def info(self, listener: str = "") -> EndpointInfo:
        return self.infos.get(listener) or next(iter(self.infos.values()))


class Registry(Generic[H]):
    """Every agent session and published endpoint of one edge process."""

    def __init__(
        self,
        settings: Settings,
        compile_policy: Callable[[str, str, Kind], PolicyHooks],
        *,
        static_owner: Callable[[str, str], str | None] = lambda listener, host: None,
        open_tcp: Callable[[int], object] | None = None,
        close_tcp: Callable[[object], None] = lambda handle: None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._compile = compile_policy
        self._static_owner = static_owner  # (listener, host) -> the config endpoint serving it
        self._open_tcp = open_tcp  # port -> listening handle; raises OSError
        self._close_tcp = close_tcp
        self._rng = rng or random.Random()
        self.sessions: dict[str, AgentSession[H]] = {}
        self.published: dict[str, Published[H]] = {}  # by URL key
        self.by_name: dict[str, Published[H]] = {}  # by Endpoint name
        self.version = 0  # bumped whenever routing may change
        self._routes: dict[str, ListenerRoutes[H]] = {}

    # --- sessions -------------------------------------------------------------------

    def authenticate(
        self, auth: Auth, authtoken: Any, client_addr: str, handle: H
    ) -> AgentSession[H]:
        """A new session for `authtoken` (from the snapshot: None when the
        token is unknown, revoked or wrong), else `RpcError`."""
        if authtoken is None:
            raise RpcError("authentication failed: the authtoken is not valid", ERR_AUTH)
        session = AgentSession(new_id("ses_"), authtoken, client_addr, handle, auth)
        self.sessions[session.id] = session
        return session

    def session_lost(self, session: AgentSession[H], now: float) -> list[Published[H]]:
        """The session ended without unbinding: its endpoints are reserved
        for its authtoken (the grace window). Returns them."""
        return self._drop(session, now + self.settings.grace_period)

    def revoke(self, authtoken_ids: Iterable[str], now: float) -> list[AgentSession[H]]:
        """Authtokens revoked or changed: their sessions (to disconnect) and
        endpoints go at once; reservations made for them too."""
        ids = set(authtoken_ids)
        gone = [s for s in self.sessions.values() if s.authtoken.id in ids]
        for session in gone:
            self._drop(session, None)
        for published in list(self.published.values()):
            if not published.members and published.authtoken_id in ids:
                self._withdraw(published)
        return gone

    def stop(self, session_id: str) -> AgentSession[H] | None:
        """An administrator stops one session (the admin API's
        `tunnel_sessions/{id}/stop`): its endpoints go at once, with no
        grace window. Returns it (to disconnect), or None if unknown."""
        session = self.sessions.get(session_id)
        if session is not None:
            self._drop(session, None)
        return session

    def _drop(self, session: AgentSession[H], reserve_until: float | None) -> list[Published[H]]:
        session.closed = True
        self.sessions.pop(session.id, None)
        touched = []
        for binding in list(session.bindings.values()):
            published = self._leave(binding)
            if published is not None:
                touched.append(published)
                if reserve_until is None or reserve_until <= 0:
                    self._withdraw(published)
                else:
                    published.reserved_until = reserve_until
                    published.former_ids[binding.id] = binding.token
        session.bindings.clear()
        if touched:
            self.version += 1
        return touched

    # --- binding ----------------------------------------------------------------------

    def bind(self, session: AgentSession[H], bind: Bind, now: float) -> BindResp:
        """Publish (or join, or take back) the endpoint `bind` asks for;
        `RpcError` naming why not. The caller emits the event."""
        target = requested(bind)
        kind = target.kind
        if kind == "tcp":
            if target.internal:
                raise RpcError("internal tcp endpoints are not supported", ERR_BAD_URL)
            return self._bind_tcp(session, bind, target, now)
        if kind == "tls" and target.internal:
            raise RpcError("internal tls endpoints are not supported", ERR_BAD_URL)
        host = target.host if target.host is not None else self._random_host(kind)
        kind = self._kind(kind, host)
        listeners = self._listeners(kind, host)
        if not is_internal(host):
            self._check_public(host, kind, listeners)
        decision = session.authtoken.acl.allows(HostBind(host))
        self._check_acl(decision)
        key = f"{kind}://{host}"
        url = self._url(kind, host, listeners)
        return self._publish(
            session,
            bind,
            key=key,
            kind=kind,
            url=url,
            host=host,
            port=0,
            listeners=listeners,
            now=now,
        )

    def _bind_tcp(
        self, session: AgentSession[H], bind: Bind, target: Target, now: float
    ) -> BindResp:
        tcp = self.settings.tcp
        if tcp is None or self._open_tcp is None:
            raise RpcError("this edge publishes no tcp endpoints", ERR_NOT_AGENT_DOMAIN)
        if target.host is not None and target.host != tcp.host:
            raise RpcError(
                f"tcp endpoints of this edge are on {tcp.host}, not {target.host}", ERR_RESERVED
            )
        first, last = tcp.ports
        if target.port is not None:
            if not first <= target.port <= last:
                raise RpcError(
                    f"tcp port {target.port} is outside this edge's range {first}-{last}",
                    ERR_RESERVED,
                )
            self._check_acl(session.authtoken.acl.allows(AddressBind(tcp.host, target.port)))
            port = target.port
        else:
            self._check_acl(session.authtoken.acl.allows(AddressBind(tcp.host)))
            port = 0  # picked when published
        key = f"tcp://{tcp.host}:{port}" if port else ""
        return self._publish(
            session,
            bind,
            key=key,
            kind="tcp",
            url="",
            host=tcp.host,
            port=port,
            listeners=(),
            now=now,
        )

    def _publish(
        self,
        session: AgentSession[H],
        bind: Bind,
        *,
        key: str,
        kind: Kind,
        url: str,
        host: str,
        port: int,
        listeners: tuple[ServedListener, ...],
        now: float,
    ) -> BindResp:
        pooling = bind.extra.pooling_enabled
        policy_text = bind.opts.traffic_policy or None
        published = self.published.get(key) if key else None
        if published is not None:
            self._expire_one(published, now)
            published = self.published.get(key)
        if published is not None:
            if published.members:
                if not (pooling and published.pooling):
                    raise RpcError(
                        f"the endpoint {published.url} is already online; stop the other"
                        " agent, or start both with pooling enabled",
                        ERR_ONLINE,
                    )
                if published.authtoken_id != session.authtoken.id and not published.pooling:
                    raise RpcError(f"the endpoint {published.url} is already online", ERR_ONLINE)
                if published.policy_text != policy_text:
                    raise RpcError(
                        f"the endpoint {published.url} is pooled with another traffic policy;"
                        " pooled agents must send the same one",
                        ERR_ONLINE,
                    )
            elif published.authtoken_id != session.authtoken.id:
                raise RpcError(
                    f"the endpoint {published.url} is reserved for the agent that just went"
                    " offline (a few seconds)",
                    ERR_ONLINE,
                )
            else:  # its own agent is back: a fresh policy and settings
                published.policy = self._policy(policy_text, published.url, kind)
                published.policy_text = policy_text
                published.pooling = pooling
                published.forwards_to = bind.forwards_to
                if published.endpoint is not None:
                    self._make_endpoint(published, listeners)
        else:
            if kind == "tcp" and not port:
                port = self._free_port()
                key = f"tcp://{host}:{port}"
            if kind == "tcp":
                url = key
            policy = self._policy(policy_text, url, kind)
            name = new_id("agent:ep_")
            published = Published(
                name,
                kind,
                url,
                host,
                port,
                session.authtoken.id,
                pooling,
                policy_text,
                policy,
                bind.forwards_to,
            )
            if kind == "tcp":
                try:
                    published.listener = self._open_tcp(port)  # type: ignore[misc]
                except OSError as exc:
                    raise RpcError(
                        f"tcp port {port} cannot be opened: {exc.strerror or exc}", ERR_RESERVED
                    ) from None
            else:
                self._make_endpoint(published, listeners)
            self.published[key] = published
            self.by_name[published.name] = published
        published.reserved_until = None
        endpoint_id, token = self._endpoint_id(published, bind)
        binding = Binding(endpoint_id, token, session, published, bind.proto)
        session.bindings[endpoint_id] = binding
        published.members.append(binding)
        self.version += 1
        return BindResp(endpoint_id, published.url, bind.proto, bind.opts, token=token)

    def unbind(self, session: AgentSession[H], endpoint_id: str) -> Published[H] | None:
        """The agent withdrew one endpoint: no reservation."""
        binding = session.bindings.pop(endpoint_id, None)
        if binding is None:
            return None
        published = self._leave(binding)
        if published is not None:
            self._withdraw(published)
        self.version += 1
        return binding.published

    def expire(self, now: float) -> list[Published[H]]:
        """Withdraw the reservations whose grace window is over."""
        gone = [
            p
            for p in self.published.values()
            if not p.members and p.reserved_until is not None and p.reserved_until <= now
        ]
        for published in gone:
            self._withdraw(published)
        return gone

    def _expire_one(self, published: Published[H], now: float) -> None:
        until = published.reserved_until
        if not published.members and until is not None and until <= now:
            self._withdraw(published)

    def _leave(self, binding: Binding[H]) -> Published[H] | None:
        """Take a binding out of its endpoint; the endpoint if it has no agent left."""
        published = binding.published
        if binding in published.members:
            published.members.remove(binding)
        return None if published.members else published

    def _withdraw(self, published: Published[H]) -> None:
        for key, known in list(self.published.items()):
            if known is published:
                del self.published[key]
        self.by_name.pop(published.name, None)
        if published.listener is not None:
            self._close_tcp(published.listener)
            published.listener = None
        self.version += 1

    # --- checks -----------------------------------------------------------------------

    def _check_acl(self, decision: Decision) -> None:
        if not decision.allowed:
            assert decision.code is not None
            raise RpcError(str(decision), f"ERR_NGROK_{decision.code}")

    def _check_public(self, host: str, kind: Kind, listeners: tuple[ServedListener, ...]) -> None:
        if not any(_covers(domain, host) for domain in self.settings.domains):
            allowed = ", ".join(self.settings.domains) or "none: internal endpoints only"
            raise RpcError(
                f"{host} is not under a domain this edge lets agents bind ({allowed})",
                ERR_NOT_AGENT_DOMAIN,
            )
        for listener in listeners:
            owner = self._static_owner(listener.name, host)
            if owner is not None:
                raise RpcError(
                    f"{host} is served by the edge's own endpoint {owner!r} on listener"
                    f" {listener.name!r}",
                    ERR_RESERVED,
                )

    def _kind(self, kind: Kind, host: str) -> Kind:
        """http and https endpoints go where the edge has listeners: an
        https bind on an edge with only plain listeners gets an http:// URL
        (and the other way round); the URL the agent gets back says which."""
        if kind not in ("http", "https") or is_internal(host):
            return kind
        schemes = {ln.scheme for ln in self.settings.listeners}
        if kind not in schemes and len(schemes) == 1:
            return "http" if "http" in schemes else "https"
        return kind

    def _listeners(self, kind: Kind, host: str) -> tuple[ServedListener, ...]:
        """The listeners an endpoint of `kind` is served on (none when internal)."""
        if is_internal(host):
            return ()
        scheme = "http" if kind == "http" else "https"  # tls: passthrough on TLS listeners
        served = tuple(ln for ln in self.settings.listeners if ln.scheme == scheme)
        if not served:
            raise RpcError(
                f"this edge serves agents' {kind} endpoints on no listener (no {scheme}"
                " listener in agent_ingress.listeners)",
                ERR_BAD_URL,
            )
        return served

    def _url(self, kind: Kind, host: str, listeners: tuple[ServedListener, ...]) -> str:
        scheme = "tls" if kind == "tls" else kind
        if not listeners:
            return f"{scheme}://{host}"
        port = listeners[0].port
        default = 80 if kind == "http" else 443
        return f"{scheme}://{host}" if port == default else f"{scheme}://{host}:{port}"

    def _random_host(self, kind: Kind) -> str:
        for domain in self.settings.domains:
            if domain.startswith("*."):
                for _ in range(16):
                    host = "".join(self._rng.choice(_ID_ALPHABET) for _ in range(10)) + domain[1:]
                    if not any(p.host == host for p in self.published.values()):
                        return host
        raise RpcError(
            "no URL given, and this edge has no wildcard domain to pick one from"
            " (agent_ingress.domains); ask for a URL",
            ERR_NOT_AGENT_DOMAIN,
        )

    def _free_port(self) -> int:
        tcp = self.settings.tcp
        assert tcp is not None
        first, last = tcp.ports
        used = {p.port for p in self.published.values() if p.kind == "tcp"}
        free = [port for port in range(first, last + 1) if port not in used]
        self._rng.shuffle(free)
        for port in free[:64]:
            try:
                handle = self._open_tcp(port)  # type: ignore[misc]
            except OSError:
                continue
            self._close_tcp(handle)  # probed: bound again when published
            return port
        raise RpcError(f"no free tcp port in {first}-{last}", ERR_RESERVED)

    def _policy(self, text: str | None, url: str, kind: Kind) -> PolicyHooks | None:
        if not text:
            return None
        try:
            return self._compile(text, f"agent endpoint {url}", kind)
        except EdgewardError as exc:
            raise RpcError(f"the traffic policy is invalid:\n{exc}", ERR_POLICY) from None

    def _endpoint_id(self, published: Published[H], bind: Bind) -> tuple[str, str]:
        """A re-bind after reconnect keeps its endpoint id (the SDK sends
        the old id and token); otherwise a new one."""
        token = published.former_ids.pop(bind.id, None) if bind.id else None
        if token is not None and secrets.compare_digest(token, bind.extra.token):
            return bind.id, token
        return new_id("ep_"), secrets.token_urlsafe(18)

    def _make_endpoint(
        self, published: Published[H], listeners: tuple[ServedListener, ...]
    ) -> None:
        upstream = Upstream(published.forwards_to or "agent", "http", "agent", 0)
        names = tuple(ln.name for ln in listeners)
        published.endpoint = Endpoint(
            published.name, published.host, upstream, names, policy=published.policy
        )
        infos = {}
        for listener in listeners or (ServedListener("", published.kind, 0),):
            default = 80 if listener.scheme == "http" else 443
            scheme = "https" if listener.scheme == "https" else "http"
            shown = "" if listener.port in (default, 0) else f":{listener.port}"
            infos[listener.name] = EndpointInfo(
                name=published.name,
                url=f"{scheme}://{published.host}{shown}",
                host=published.host,
                port=listener.port or default,
                scheme=scheme,
                id=published.name.removeprefix("agent:"),
                upstream=published.forwards_to,
            )
        published.infos = infos

    # --- lookups for the data plane ------------------------------------------------------------

    def routes(self, listener: str) -> ListenerRoutes[H]:
        """The fallback of `listener`'s router (one object per name)."""
        routes = self._routes.get(listener)
        if routes is None:
            routes = self._routes[listener] = ListenerRoutes(self, listener)
        return routes

    def internal(self, host: str) -> Published[H] | None:
        """The internal http endpoint `host` (exact, then the longest wildcard)."""
        return self._lookup(host, lambda p: p.internal and p.kind in ("http", "https"))

    def tls(self, server_name: str) -> Published[H] | None:
        """The tls (passthrough) endpoint for an SNI name."""
        return self._lookup(server_name, lambda p: p.kind == "tls")

    def _lookup(self, host: str, wanted: Callable[[Published[H]], bool]) -> Published[H] | None:
        best: Published[H] | None = None
        for published in self.published.values():
            if not wanted(published):
                continue
            if published.host == host:
                return published
            wildcard = published.host.startswith("*.") and host.endswith(published.host[1:])
            if wildcard and (best is None or len(published.host) > len(best.host)):
                best = published
        return best

    def endpoints(self) -> Iterator[Published[H]]:
        return iter(list(self.published.values()))


class ListenerRoutes(Generic[H]):
    """The agents' http/https endpoints one listener serves, as its router's
    fallback: exact names first, then the longest wildcard."""

    __slots__ = ("_cache", "_exact", "_listener", "_registry", "_version", "_wildcards")

    def __init__(self, registry: Registry[H], listener: str) -> None:
        self._registry = registry
        self._listener = listener
        self._version = -1
        self._exact: dict[str, Endpoint] = {}
        self._wildcards: list[tuple[str, Endpoint]] = []
        self._cache: dict[bytes, Endpoint | None] = {}

    def _refresh(self) -> None:
        self._version = self._registry.version
        exact: dict[str, Endpoint] = {}
        wild: list[tuple[str, Endpoint]] = []
        for published in self._registry.published.values():
            endpoint = published.endpoint
            if published.kind not in ("http", "https") or endpoint is None:
                continue
            if self._listener not in endpoint.listeners:
                continue
            if endpoint.is_wildcard:
                wild.append((endpoint.hostname[1:], endpoint))
            else:
                exact[endpoint.hostname] = endpoint
        self._exact = exact
        self._wildcards = sorted(wild, key=lambda w: -len(w[0]))
        self._cache = {}

    def route_name(self, host: str) -> Endpoint | None:
        if self._version != self._registry.version:
            self._refresh()
        endpoint = self._exact.get(host)
        if endpoint is None:
            for suffix, candidate in self._wildcards:
                if host.endswith(suffix) and len(host) > len(suffix):
                    return candidate
        return endpoint

    def info_of(self, name: str) -> EndpointInfo | None:
        """`endpoint.*` of the agent endpoint `name` as this listener serves it."""
        published = self._registry.by_name.get(name)
        return published.info(self._listener) if published is not None else None


def _covers(domain: str, host: str) -> bool:
    """Whether an `agent_ingress.domains` entry allows `host` (a wildcard
    entry allows names at any depth under it, and narrower wildcards)."""
    if domain.startswith("*."):
        return host.endswith(domain[1:]) and len(host) > len(domain) - 1
    return host == domain


__all__ = [
    "EDGE_TYPES",
    "AgentSession",
    "Binding",
    "ListenerRoutes",
    "Published",
    "Registry",
    "ServedListener",
    "Settings",
]
