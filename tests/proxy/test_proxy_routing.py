"""Routing by host against a brute-force oracle (hypothesis)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edgeward.config import Endpoint, Upstream
from edgeward.proxy.routing import Router, host_of

LABELS = st.sampled_from(["a", "b", "app", "x-1", "example", "com", "test"])
NAMES = st.lists(LABELS, min_size=1, max_size=4).map(".".join)
PATTERNS = st.one_of(NAMES, NAMES.map(lambda n: "*." + n))
UPSTREAM = Upstream("http://127.0.0.1:1", "http", "127.0.0.1", 1)


def oracle(patterns: list[str], host: str) -> str | None:
    """Exact match, else the wildcard with the longest suffix that leaves at
    least one label in front."""
    if host in patterns:
        return host
    matching = [
        p
        for p in patterns
        if p.startswith("*.") and host.endswith(p[1:]) and len(host) > len(p) - 1
    ]
    return max(matching, key=len, default=None)


@given(st.lists(PATTERNS, unique=True, max_size=8), NAMES)
def test_router_agrees_with_the_oracle(patterns: list[str], host: str) -> None:
    endpoints = [Endpoint(p, p, UPSTREAM, ("web",)) for p in patterns]
    found = Router(endpoints).route_name(host)
    assert (found.hostname if found else None) == oracle(patterns, host)


@given(NAMES, st.one_of(st.none(), st.integers(0, 65535)), st.booleans())
def test_authority_forms(host: str, port: int | None, upper: bool) -> None:
    text = host.upper() if upper else host
    authority = f"{text}:{port}" if port is not None else text
    assert host_of(authority.encode()) == host
    assert host_of(f"{text}.".encode()) == host


def test_ipv6_authority() -> None:
    assert host_of(b"[::1]:8080") == "::1"
    assert host_of(b"[2001:DB8::1]") == "2001:db8::1"
