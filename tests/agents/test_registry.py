"""The registry of agent sessions and published endpoints, sans-IO: what a
Bind may publish (targets, domains, the edge's own endpoints, ACLs, tcp
ports, policies), pooling, the grace window, re-binds, revocation, and the
routes listeners fall back to."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edgeward.agents import Registry, ServedListener, Settings, requested
from edgeward.agents.registry import _covers
from edgeward.authtokens import Acl
from edgeward.authtokens.snapshot import Authtoken
from edgeward.config import AgentTcp
from edgeward.errors import ConfigError
from edgeward.hooks import PolicyHooks
from edgeward.tunnel.errors import RpcError
from edgeward.tunnel.messages import Auth, Bind, BindExtra, HttpOpts, TcpOpts, TlsOpts

SETTINGS = Settings(
    domains=("*.apps.example.com", "exact.example.org"),
    listeners=(ServedListener("web", "http", 8080), ServedListener("secure", "https", 443)),
    tcp=AgentTcp("127.0.0.1", (20000, 20002), "tcp.example.com"),
    grace_period=10.0,
)


class FakePolicy:
    def __init__(self, text: str) -> None:
        self.text = text


def compile_policy(text: str, owner: str, kind: str) -> PolicyHooks:
    if "broken" in text:
        raise ConfigError("on_http_request[0]: bad", None)
    return FakePolicy(text)  # type: ignore[return-value]


def token(*rules: str, id: str = "at_a") -> Authtoken:
    return Authtoken(id, "", Acl.parse(list(rules)), "", datetime.now(UTC))


class Ports:
    def __init__(self) -> None:
        self.open: set[int] = set()
        self.busy: set[int] = set()

    def listen(self, port: int) -> object:
        if port in self.busy or port in self.open:
            raise OSError(98, "Address already in use")
        self.open.add(port)
        return port

    def close(self, handle: object) -> None:
        self.open.discard(handle)  # type: ignore[arg-type]


def registry(
    owner: dict[tuple[str, str], str] | None = None, ports: Ports | None = None
) -> Registry[str]:
    owned = owner or {}
    ports = ports or Ports()
    return Registry(
        SETTINGS,
        compile_policy,
        static_owner=lambda listener, host: owned.get((listener, host)),
        open_tcp=ports.listen,
        close_tcp=ports.close,
    )


def http(url: str = "", *, pooling: bool = False, policy: str | None = None, **kw: str) -> Bind:
    proto = url.split("://", maxsplit=1)[0] if url else "https"
    opts = HttpOpts(url=url, traffic_policy=policy, **kw)
    return Bind(proto, opts, extra=BindExtra(pooling_enabled=pooling))


def session(reg: Registry[str], *rules: str, id: str = "at_a", handle: str = "tunnel") -> object:
    return reg.authenticate(Auth(), token(*rules, id=id), "127.0.0.1:5000", handle)


def refused(reg: Registry[str], sess: object, bind: Bind) -> RpcError:
    with pytest.raises(RpcError) as info:
        reg.bind(sess, bind, 0.0)  # type: ignore[arg-type]
    return info.value


# --- targets -----------------------------------------------------------------------------


def test_targets_from_every_sdks_fields() -> None:
    assert requested(http("https://A.apps.example.com")).host == "a.apps.example.com"
    assert requested(Bind("https", HttpOpts(domain="d.example.com"))).host == "d.example.com"
    assert requested(Bind("https", HttpOpts(hostname="h.example.com"))).host == "h.example.com"
    assert requested(Bind("https", HttpOpts())).host is None  # the edge picks
    tcp = requested(Bind("tcp", TcpOpts(addr="tcp.example.com:20001")))
    assert (tcp.kind, tcp.host, tcp.port) == ("tcp", "tcp.example.com", 20001)
    assert requested(Bind("tls", TlsOpts(domain="x.example.com"))).kind == "tls"
    internal = Bind("http", HttpOpts(url="http://x.apps.example.com"))
    internal.extra.bindings = ["internal"]
    with pytest.raises(RpcError, match=r"ending in '\.internal'"):
        requested(internal)
    with pytest.raises(RpcError) as info:
        requested(http("https://bad_name.example.com"))
    assert info.value.error_code == "ERR_NGROK_249"
    with pytest.raises(RpcError):
        requested(Bind("ssh", HttpOpts()))


# --- publishing ---------------------------------------------------------------------------


def test_a_bind_publishes_on_the_listeners_of_its_scheme() -> None:
    reg = registry()
    sess = session(reg, "*")
    resp = reg.bind(sess, http("http://one.apps.example.com"), 0.0)  # type: ignore[arg-type]
    assert resp.url == "http://one.apps.example.com:8080"
    assert resp.id.startswith("ep_") and resp.token
    endpoint = reg.routes("web").route_name("one.apps.example.com")
    assert endpoint is not None and endpoint.listeners == ("web",)
    assert reg.routes("secure").route_name("one.apps.example.com") is None
    resp = reg.bind(sess, http("https://two.apps.example.com"), 0.0)  # type: ignore[arg-type]
    assert resp.url == "https://two.apps.example.com"  # 443: no port shown
    info = reg.routes("secure").info_of(resp_name(reg, "https://two.apps.example.com"))
    assert info is not None and info.url == "https://two.apps.example.com"


def resp_name(reg: Registry[str], url: str) -> str:
    return next(p.name for p in reg.published.values() if p.url == url)


def test_no_url_picks_a_name_under_the_first_wildcard_domain() -> None:
    reg = registry()
    resp = reg.bind(session(reg, "*"), http(), 0.0)  # type: ignore[arg-type]
    assert resp.url.startswith("https://") and resp.url.endswith(".apps.example.com")


def test_public_names_must_be_under_an_agent_domain() -> None:
    reg = registry()
    sess = session(reg, "*")
    assert reg.bind(sess, http("http://exact.example.org"), 0.0)  # type: ignore[arg-type]
    error = refused(reg, sess, http("http://other.example.org"))
    assert error.error_code == "ERR_NGROK_318"
    assert "*.apps.example.com, exact.example.org" in error.message
    assert not _covers("*.apps.example.com", "apps.example.com")
    assert _covers("*.apps.example.com", "a.b.apps.example.com")


def test_the_edges_own_endpoints_cannot_be_shadowed() -> None:
    reg = registry(owner={("web", "app.apps.example.com"): "app"})
    error = refused(reg, session(reg, "*"), http("http://app.apps.example.com"))
    assert error.error_code == "ERR_NGROK_381"
    assert "endpoint 'app'" in error.message


def test_a_refusal_names_the_whole_rule_set_and_the_code() -> None:
    reg = registry()
    sess = session(reg, "bind:alice.internal", "bind:*.alice.apps.example.com")
    assert reg.bind(sess, http("https://alice.internal"), 0.0)  # type: ignore[arg-type]
    for url in ("https://bob.internal", "https://alice.apps.example.com"):
        error = refused(reg, sess, http(url))
        assert error.error_code == "ERR_NGROK_316"
        assert "bind:alice.internal, bind:*.alice.apps.example.com" in error.message


def test_internal_endpoints_are_on_no_listener() -> None:
    reg = registry()
    resp = reg.bind(session(reg, "*"), http("https://svc.internal"), 0.0)  # type: ignore[arg-type]
    assert resp.url == "https://svc.internal"
    assert reg.routes("secure").route_name("svc.internal") is None
    found = reg.internal("svc.internal")
    assert found is not None and found.online
    assert reg.internal("other.internal") is None


def test_a_wildcard_endpoint_and_the_longest_match() -> None:
    reg = registry()
    sess = session(reg, "*")
    reg.bind(sess, http("http://*.apps.example.com"), 0.0)  # type: ignore[arg-type]
    reg.bind(sess, http("http://*.b.apps.example.com"), 0.0)  # type: ignore[arg-type]
    routes = reg.routes("web")
    assert routes.route_name("x.b.apps.example.com").hostname == "*.b.apps.example.com"  # type: ignore[union-attr]
    assert routes.route_name("x.apps.example.com").hostname == "*.apps.example.com"  # type: ignore[union-attr]


def test_a_broken_policy_refuses_the_bind() -> None:
    reg = registry()
    error = refused(reg, session(reg, "*"), http("http://p.apps.example.com", policy="broken"))
    assert error.error_code == "ERR_NGROK_9026"
    assert "on_http_request[0]: bad" in error.message
    assert not reg.published


# --- pooling, the grace window, re-binds, revocation --------------------------------------


def test_without_pooling_a_second_bind_is_refused() -> None:
    reg = registry()
    url = "http://p.apps.example.com"
    reg.bind(session(reg, "*"), http(url), 0.0)  # type: ignore[arg-type]
    error = refused(reg, session(reg, "*"), http(url, pooling=True))
    assert error.error_code == "ERR_NGROK_334"
    assert "already online" in error.message


def test_pooled_agents_share_a_url_and_one_is_picked_at_random() -> None:
    reg = registry()
    url = "http://p.apps.example.com"
    a, b = session(reg, "*", handle="A"), session(reg, "*", handle="B")
    first = reg.bind(a, http(url, pooling=True), 0.0)  # type: ignore[arg-type]
    second = reg.bind(b, http(url, pooling=True), 0.0)  # type: ignore[arg-type]
    assert first.url == second.url and first.id != second.id
    published = reg.published["http://p.apps.example.com"]
    picked = {published.pick().session.handle for _ in range(64)}  # type: ignore[union-attr]
    assert picked == {"A", "B"}
    # the pool's policy must be the same for every agent in it
    error = refused(reg, session(reg, "*"), http(url, pooling=True, policy="other"))
    assert "same one" in error.message


def test_a_dropped_agents_endpoint_is_reserved_for_its_token() -> None:
    reg = registry()
    url = "http://r.apps.example.com"
    sess = session(reg, "*", id="at_mine")
    resp = reg.bind(sess, http(url), 0.0)  # type: ignore[arg-type]
    (reserved,) = reg.session_lost(sess, 100.0)  # type: ignore[arg-type]
    assert reserved.reserved_until == 110.0 and not reserved.online
    assert reg.routes("web").route_name("r.apps.example.com") is not None  # still routed: 503
    error = refused(reg, session(reg, "*", id="at_other"), http(url))
    assert "reserved" in error.message
    # the same token comes back with the old id and token: the same endpoint
    again = http(url)
    again.id, again.extra.token = resp.id, resp.token
    back = reg.bind(session(reg, "*", id="at_mine"), again, 105.0)  # type: ignore[arg-type]
    assert (back.id, back.url) == (resp.id, resp.url)


def test_reservations_expire() -> None:
    reg = registry()
    sess = session(reg, "*")
    reg.bind(sess, http("http://e.apps.example.com"), 0.0)  # type: ignore[arg-type]
    reg.session_lost(sess, 0.0)  # type: ignore[arg-type]
    assert reg.expire(5.0) == []
    (gone,) = reg.expire(10.0)
    assert gone.url == "http://e.apps.example.com:8080"
    assert reg.routes("web").route_name("e.apps.example.com") is None
    other = session(reg, "*", id="at_b")
    assert reg.bind(other, http("http://e.apps.example.com"), 11.0)  # type: ignore[arg-type]


def test_an_unbind_withdraws_at_once() -> None:
    reg = registry()
    sess = session(reg, "*")
    resp = reg.bind(sess, http("http://u.apps.example.com"), 0.0)  # type: ignore[arg-type]
    assert reg.unbind(sess, resp.id) is not None  # type: ignore[arg-type]
    assert not reg.published
    assert reg.unbind(sess, resp.id) is None  # type: ignore[arg-type]  # idempotent


def test_revoking_a_token_drops_its_sessions_and_reservations() -> None:
    reg = registry()
    a = session(reg, "*", id="at_a")
    b = session(reg, "*", id="at_b")
    reg.bind(a, http("http://a.apps.example.com"), 0.0)  # type: ignore[arg-type]
    reg.bind(b, http("http://b.apps.example.com"), 0.0)  # type: ignore[arg-type]
    dropped = session(reg, "*", id="at_a")
    reg.bind(dropped, http("http://c.apps.example.com"), 0.0)  # type: ignore[arg-type]
    reg.session_lost(dropped, 0.0)  # type: ignore[arg-type]
    gone = reg.revoke({"at_a"}, 1.0)
    assert gone == [a]
    assert set(reg.published) == {"http://b.apps.example.com"}
    assert reg.session_lost(a, 2.0) == []  # type: ignore[arg-type]  # its end changes nothing


# --- tcp ----------------------------------------------------------------------------------


def test_tcp_ports_come_from_the_range() -> None:
    ports = Ports()
    reg = registry(ports=ports)
    sess = session(reg, "*")
    urls = {
        reg.bind(sess, Bind("tcp", TcpOpts()), 0.0).url  # type: ignore[arg-type]
        for _ in range(3)
    }
    assert urls == {f"tcp://tcp.example.com:{p}" for p in (20000, 20001, 20002)}
    assert ports.open == {20000, 20001, 20002}
    error = refused(reg, sess, Bind("tcp", TcpOpts()))
    assert "no free tcp port" in error.message
    error = refused(reg, sess, Bind("tcp", TcpOpts(addr="tcp.example.com:30000")))
    assert "outside" in error.message


def test_tcp_binds_and_the_acl() -> None:
    reg = registry()
    sess = session(reg, "bind:tcp.example.com:20001")
    assert refused(reg, sess, Bind("tcp", TcpOpts())).error_code == "ERR_NGROK_356"
    addr = Bind("tcp", TcpOpts(addr="tcp.example.com:20000"))
    assert refused(reg, sess, addr).error_code == "ERR_NGROK_308"
    resp = reg.bind(sess, Bind("tcp", TcpOpts(addr="tcp.example.com:20001")), 0.0)  # type: ignore[arg-type]
    assert resp.url == "tcp://tcp.example.com:20001"


def test_a_port_in_use_elsewhere_is_skipped_or_refused() -> None:
    ports = Ports()
    ports.busy = {20000, 20001}
    reg = registry(ports=ports)
    sess = session(reg, "*")
    assert reg.bind(sess, Bind("tcp", TcpOpts()), 0.0).url.endswith(":20002")  # type: ignore[arg-type]
    error = refused(reg, sess, Bind("tcp", TcpOpts(addr="tcp.example.com:20000")))
    assert "cannot be opened" in error.message


def test_tls_endpoints_by_server_name() -> None:
    reg = registry()
    sess = session(reg, "*")
    reg.bind(sess, Bind("tls", TlsOpts(domain="*.apps.example.com")), 0.0)  # type: ignore[arg-type]
    found = reg.tls("x.apps.example.com")
    assert found is not None and found.kind == "tls"
    assert reg.routes("secure").route_name("x.apps.example.com") is None  # not an HTTP route
    assert refused(reg, sess, Bind("tls", TlsOpts(domain="a.internal"))).error_code
