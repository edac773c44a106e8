"""Host -> endpoint: exact names first, then the longest matching
`*.suffix` wildcard (any depth of subdomain); then, when the edge config
serves no such host, the endpoints agents published on the listener
(`fallback`): the config's endpoints always win."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from edgeward.config import Endpoint


class Fallback(Protocol):
    """Endpoints that come and go (published by agents)."""

    def route_name(self, host: str) -> Endpoint | None: ...


class Router:
    __slots__ = ("_cache", "_exact", "_wildcards", "fallback", "only")

    def __init__(self, endpoints: Iterable[Endpoint], fallback: Fallback | None = None) -> None:
        eps = list(endpoints)
        self._exact = {e.hostname: e for e in eps if not e.is_wildcard}
        # longest suffix first so "*.a.example.com" beats "*.example.com"
        wild = [(e.hostname[1:], e) for e in eps if e.is_wildcard]
        self._wildcards = sorted(wild, key=lambda w: -len(w[0]))
        self._cache: dict[bytes, Endpoint | None] = {}
        self.fallback = fallback
        # the listener's only endpoint (its on_tcp_connect runs at accept): not with agents
        self.only = eps[0] if len(eps) == 1 and fallback is None else None

    def route(self, authority: bytes) -> Endpoint | None:
        """`authority` as the client sent it (Host / :authority, port and
        case as written)."""
        hit = self._cache.get(authority, self)
        if hit is self:
            hit = self.route_static(host_of(authority))
            if len(self._cache) < 4096:
                self._cache[authority] = hit
        if hit is None and self.fallback is not None:
            return self.fallback.route_name(host_of(authority))
        return hit  # type: ignore[return-value]

    def route_name(self, host: str) -> Endpoint | None:
        endpoint = self.route_static(host)
        if endpoint is None and self.fallback is not None:
            return self.fallback.route_name(host)
        return endpoint

    def route_static(self, host: str) -> Endpoint | None:
        """The edge config's endpoint for `host` (never an agent's)."""
        endpoint = self._exact.get(host)
        if endpoint is None:
            for suffix, candidate in self._wildcards:
                if host.endswith(suffix) and len(host) > len(suffix):
                    return candidate
        return endpoint


def host_of(authority: bytes) -> str:
    """b"App.Example.com:8443" -> "app.example.com"; b"[::1]:80" -> "::1"."""
    text = authority.decode("latin-1").strip().lower()
    if text.startswith("["):
        return text[1 : text.find("]")] if "]" in text else text
    host, _, port = text.rpartition(":")
    if host and port.isdigit():
        text = host
    return text.rstrip(".")
