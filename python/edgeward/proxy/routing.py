"""Host -> endpoint: exact names first, then the longest matching
`*.suffix` wildcard (any depth of subdomain)."""

from __future__ import annotations

from collections.abc import Iterable

from edgeward.config import Endpoint


class Router:
    __slots__ = ("_cache", "_exact", "_wildcards", "only")

    def __init__(self, endpoints: Iterable[Endpoint]) -> None:
        eps = list(endpoints)
        self._exact = {e.hostname: e for e in eps if not e.is_wildcard}
        # longest suffix first so "*.a.example.com" beats "*.example.com"
        wild = [(e.hostname[1:], e) for e in eps if e.is_wildcard]
        self._wildcards = sorted(wild, key=lambda w: -len(w[0]))
        self._cache: dict[bytes, Endpoint | None] = {}
        self.only = eps[0] if len(eps) == 1 else None

    def route(self, authority: bytes) -> Endpoint | None:
        """`authority` as the client sent it (Host / :authority, port and
        case as written)."""
        hit = self._cache.get(authority, self)
        if hit is not self:
            return hit  # type: ignore[return-value]
        endpoint = self.route_name(host_of(authority))
        if len(self._cache) < 4096:
            self._cache[authority] = endpoint
        return endpoint

    def route_name(self, host: str) -> Endpoint | None:
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
