"""What a connection works with: the server-wide services, the config
generation it was accepted under, and its own state."""

from __future__ import annotations

import itertools
import secrets
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from edgeward.config import EdgeConfig, Endpoint, Listener
from edgeward.hooks import (
    ConnectionInfo,
    EndpointInfo,
    Fetch,
    FetchResult,
    InternalError,
    PolicyHooks,
)
from edgeward.proxy import errors
from edgeward.proxy.accesslog import AccessLog
from edgeward.proxy.codecs import CodecFactory
from edgeward.proxy.inspector import Inspector
from edgeward.proxy.metrics import Stats
from edgeward.proxy.routing import Router
from edgeward.proxy.upstream import AnyPool, Pool, Pools
from edgeward.proxy.upstream_h2 import H2UpstreamPool
from edgeward.proxy.watchdog import Watchdog

if TYPE_CHECKING:
    from edgeward.proxy.agent_ingress import AgentService


class EndpointInfos(dict[str, EndpointInfo]):
    """A listener's endpoint facts by endpoint name; the facts of agents'
    endpoints, which come and go, are asked of the listener's agent routes."""

    __slots__ = ("routes",)

    def __init__(self, infos: dict[str, EndpointInfo], routes: object = None) -> None:
        super().__init__(infos)
        self.routes = routes  # edgeward.agents.ListenerRoutes, or None

    def __missing__(self, name: str) -> EndpointInfo:
        info = self.routes.info_of(name) if self.routes is not None else None  # type: ignore[attr-defined]
        if info is None:
            raise KeyError(name)
        return info  # type: ignore[no-any-return]


@dataclass(slots=True)
class ListenerRuntime:
    listener: Listener
    router: Router
    endpoints: tuple[Endpoint, ...]
    ssl_context: ssl.SSLContext | None
    endpoint_infos: EndpointInfos
    listener_info: EndpointInfo  # stands in for the endpoint when none matched


@dataclass(slots=True)
class Generation:
    """One loaded configuration. An exchange keeps the generation it began
    under, so a reload never changes the rules mid-exchange; a connection
    takes the current one at its next request (`ConnContext.current`)."""

    config: EdgeConfig
    listeners: dict[str, ListenerRuntime]
    trusted: Callable[[str], bool]
    pools: dict[str, AnyPool] = field(default_factory=dict)  # by endpoint name (`Pools.apply`)
    # internal endpoints of the config (on no listener; forward-internal reaches them)
    internal: Router = field(default_factory=lambda: Router(()))
    internal_infos: dict[str, EndpointInfo] = field(default_factory=dict)


class Fetcher(Protocol):
    async def __call__(self, fetch: Fetch) -> FetchResult: ...


class Services:
    """Server-wide, shared by all generations: pools, ids, log, codecs,
    the counters behind the metrics."""

    def __init__(
        self,
        server_codec: CodecFactory,
        client_codec: CodecFactory,
        access_log: AccessLog,
        fetch: Fetcher,
    ) -> None:
        self.server_codec = server_codec
        self.watchdog = Watchdog()
        self.pools = Pools(client_codec)
        self.access_log = access_log
        self.fetch = fetch
        self._prefix = secrets.token_hex(4).encode()
        self._ids = itertools.count(1)
        self.draining = False
        self.stats = Stats()
        self.generation: Generation | None = None  # the current one (`Server.gen`)
        self.agents: AgentService | None = None  # with `agent_ingress:`
        # The traffic inspector; `taps` (endpoint name -> Tap, empty unless
        # an endpoint is inspected) is the one thing every exchange checks.
        self.inspector = Inspector()
        self.taps = self.inspector.taps

    def request_id(self) -> bytes:
        """Unique per process and cheap: a random prefix and a counter."""
        return b"%b%012x" % (self._prefix, next(self._ids))


@dataclass(slots=True)
class ConnContext:
    services: Services
    gen: Generation
    runtime: ListenerRuntime
    info: ConnectionInfo
    trusted_peer: bool
    # The policy whose on_tcp_connect ran, for the listener (None) and each endpoint by name.
    tcp_checked: dict[str | None, PolicyHooks] = field(default_factory=dict)
    config: EdgeConfig = field(init=False)  # the generation's

    def __post_init__(self) -> None:
        self.config = self.gen.config

    def tcp_check_due(self, endpoint: Endpoint | None, policy: PolicyHooks) -> bool:
        """Must `policy`'s on_tcp_connect run for this connection now (the
        listener's when `endpoint` is None)? Once per connection and policy:
        after a reload or an API change that changed the policy, the new one
        runs before the connection's next exchange there, so a tightened
        allow list also closes the keep-alive connections it now refuses."""
        key = None if endpoint is None else endpoint.name
        replaced = self.tcp_checked.get(key)
        if replaced is policy:
            return False
        if replaced is not None:  # its results go: a long-lived connection keeps no old policies
            self.info.policy_state.pop(replaced, None)
        self.tcp_checked[key] = policy
        return True

    def current(self) -> ConnContext | None:
        """This connection's context for its next request or stream: itself,
        or after a reload or a change made through the admin API, one under
        the current generation, so open keep-alive connections follow the
        change too (exchanges under way keep theirs). None when the listener
        is gone or changed scheme: the connection ends."""
        gen = self.services.generation
        if gen is None or gen is self.gen:
            return self
        runtime = gen.listeners.get(self.info.listener)
        if runtime is None or runtime.listener.scheme != self.runtime.listener.scheme:
            return None
        trusted = gen.trusted(self.info.client_ip)
        return ConnContext(
            self.services, gen, runtime, self.info, trusted, tcp_checked=self.tcp_checked
        )

    def pool(self, endpoint: Endpoint) -> Pool | H2UpstreamPool:
        """The upstream pool of one of this generation's endpoints, or the
        Proxy streams of the agents serving an endpoint they published."""
        pool = self.gen.pools.get(endpoint.name)
        if pool is not None:
            return pool
        agents = self.services.agents
        if agents is None:
            raise KeyError(endpoint.name)
        limits, timeouts = self.config.limits, self.config.timeouts
        return agents.pool(  # type: ignore[no-any-return]
            endpoint, self.info, limits.upstream_pool_size, timeouts.upstream_idle
        )

    def internal(self, url: str) -> tuple[Endpoint, EndpointInfo] | InternalError:
        """The internal endpoint `url` names (forward-internal): the
        config's, else an online agent's."""
        host = (urlsplit(url).hostname or "").rstrip(".")
        endpoint = self.gen.internal.route_static(host)
        if endpoint is not None:
            return endpoint, self.gen.internal_infos[endpoint.name]
        if self.services.agents is not None:
            return self.services.agents.internal(host)
        return InternalError(
            errors.ENDPOINT_NOT_FOUND.status,
            errors.ENDPOINT_NOT_FOUND.code,
            f"no internal endpoint {host} is online",
        )


def make_trust(config: EdgeConfig) -> Callable[[str], bool]:
    nets = config.forwarded.trusted
    if not nets:
        return lambda ip: False

    def trusted(ip: str) -> bool:
        try:
            addr = ip_address(ip)
        except ValueError:
            return False
        return any(addr in n for n in nets)

    return trusted
