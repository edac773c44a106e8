"""Hop-by-hop removal and forwarding headers, for each build."""

from __future__ import annotations

from types import ModuleType

import pytest

from edgeward.http1 import forwarding as forwarding_py

BUILDS = [forwarding_py]
try:
    from edgeward.http1 import _forwarding as forwarding_c  # type: ignore[attr-defined]
except ImportError:
    pass
else:
    BUILDS.append(forwarding_c)


@pytest.fixture(params=BUILDS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def fwd(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


def test_hop_by_hop_fields_go(fwd: ModuleType) -> None:
    headers = [
        (b"host", b"a"),
        (b"connection", b"keep-alive, X-Secret"),
        (b"keep-alive", b"timeout=5"),
        (b"x-secret", b"1"),
        (b"te", b"trailers"),
        (b"transfer-encoding", b"chunked"),
        (b"upgrade", b"websocket"),
        (b"proxy-connection", b"keep-alive"),
        (b"trailer", b"x"),
        (b"accept", b"*/*"),
    ]
    assert fwd.strip_hop_by_hop(headers) == [(b"host", b"a"), (b"accept", b"*/*")]
    assert fwd.connection_tokens(headers) == {b"keep-alive", b"x-secret"}


def test_connection_cannot_remove_host_or_length(fwd: ModuleType) -> None:
    headers = [(b"host", b"a"), (b"content-length", b"3"), (b"connection", b"host, content-length")]
    assert fwd.strip_hop_by_hop(headers) == headers[:2]


def test_untrusted_forwarding_headers_are_replaced(fwd: ModuleType) -> None:
    headers = [
        (b"host", b"app.example.com"),
        (b"x-forwarded-for", b"6.6.6.6"),
        (b"forwarded", b"for=6.6.6.6"),
        (b"x-forwarded-host", b"evil"),
    ]
    out = fwd.add_forwarding(headers, "203.0.113.7", b"https", b"app.example.com", trusted=False)
    assert out == [
        (b"host", b"app.example.com"),
        (b"x-forwarded-for", b"203.0.113.7"),
        (b"x-forwarded-proto", b"https"),
        (b"x-forwarded-host", b"app.example.com"),
        (b"forwarded", b"for=203.0.113.7;host=app.example.com;proto=https"),
    ]


def test_trusted_chain_is_extended(fwd: ModuleType) -> None:
    headers = [
        (b"x-forwarded-for", b"198.51.100.1"),
        (b"x-forwarded-proto", b"http"),
        (b"forwarded", b"for=198.51.100.1"),
    ]
    out = dict(fwd.add_forwarding(headers, "2001:db8::1", b"https", b"a b", trusted=True))
    assert out[b"x-forwarded-for"] == b"198.51.100.1, 2001:db8::1"
    assert out[b"x-forwarded-proto"] == b"http"
    assert out[b"x-forwarded-host"] == b"a b"
    assert out[b"forwarded"] == b'for=198.51.100.1, for="[2001:db8::1]";host="a b";proto=https'
