"""What a connection works with: the server-wide services, the config
generation it was accepted under, and its own state."""

from __future__ import annotations

import itertools
import secrets
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Protocol

from edgeward.config import EdgeConfig, Endpoint, Listener
from edgeward.hooks import ConnectionInfo, EndpointInfo, Fetch, FetchResult
from edgeward.proxy.accesslog import AccessLog
from edgeward.proxy.codecs import CodecFactory
from edgeward.proxy.metrics import Stats
from edgeward.proxy.routing import Router
from edgeward.proxy.upstream import Pools, UpstreamPool
from edgeward.proxy.watchdog import Watchdog


@dataclass(slots=True)
class ListenerRuntime:
    listener: Listener
    router: Router
    endpoints: tuple[Endpoint, ...]
    ssl_context: ssl.SSLContext | None
    endpoint_infos: dict[str, EndpointInfo]
    listener_info: EndpointInfo  # stands in for the endpoint when none matched


@dataclass(slots=True)
class Generation:
    """One loaded configuration. Connections keep the generation they were
    accepted under, so a reload never changes the rules mid-connection."""

    config: EdgeConfig
    listeners: dict[str, ListenerRuntime]
    trusted: Callable[[str], bool]
    pools: dict[str, UpstreamPool] = field(default_factory=dict)  # by endpoint name (`Pools.apply`)


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
    tcp_checked: set[str] = field(default_factory=set)  # endpoints whose on_tcp_connect ran
    config: EdgeConfig = field(init=False)  # the generation's

    def __post_init__(self) -> None:
        self.config = self.gen.config

    def pool(self, endpoint: Endpoint) -> UpstreamPool:
        """The upstream pool of one of this generation's endpoints."""
        return self.gen.pools[endpoint.name]


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
