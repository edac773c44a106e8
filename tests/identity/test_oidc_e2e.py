"""openid-connect end to end: `edgeward serve` in front of an upstream,
Canaille as the OpenID Provider, a scripted browser (httpx + cookie jar).
The brief's email-domain rule, logout, tampering, replays, login CSRF,
open redirects, two endpoints on one auth host, session expiry."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.identity.op import Provider
from tests.identity.support import (
    Browser,
    Certs,
    IdentityEdge,
    pick_port,
    start_identity_edge,
    write_keys,
)
from tests.policy.e2e import Server

POLICY = """
on_http_request:
  - actions:
      - type: openid-connect
        config:
          issuer_url: {issuer}
          client_id: {client_id}
          client_secret: {secret}
          scopes: [openid, profile, email]
{extra}
  - expressions:
      - "!actions.ngrok.oidc.identity.email.endsWith('@example.com')"
    actions:
      - type: deny
  - actions:
      - type: add-headers
        config:
          headers:
            x-user-email: ${{actions.ngrok.oidc.identity.email}}
            x-user-name: ${{actions.ngrok.oidc.identity.name}}
            x-user-sub: ${{actions.ngrok.oidc.identity.provider_user_id}}
on_http_response:
  - actions:
      - type: add-headers
        config:
          headers:
            x-timed-out: ${{string(actions.ngrok.oidc.session_timed_out)}}
            x-max-reached: ${{string(actions.ngrok.oidc.session_max_duration_reached)}}
"""
ALICE = ("alice", "alice-password-1")
MALLORY = ("mallory", "mallory-password-1")
CALLBACK = re.compile(r"/oauth2/callback\?")
HANDOFF = re.compile(r"/ngrok/handoff\?")


def policy(provider: Provider, port: int, extra: str = "") -> str:
    client_id, secret = provider.client(f"https://auth.edge.test:{port}/oauth2/callback")
    indented = "\n".join("          " + line for line in extra.strip().splitlines())
    return POLICY.format(issuer=provider.issuer, client_id=client_id, secret=secret, extra=indented)


@pytest.fixture(scope="module")
def edge(
    provider: Provider, certs: Certs, upstream: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IdentityEdge]:
    port = pick_port()
    endpoints = {
        "app": policy(provider, port),
        "app2": policy(provider, port),
        "cors": policy(provider, port, "allow_cors_preflight: true"),
    }
    running = start_identity_edge(
        tmp_path_factory.mktemp("edge"), certs, port, endpoints, upstream.url
    )
    yield running
    running.stop()


@pytest.fixture
def browser(certs: Certs) -> Iterator[Browser]:
    b = Browser(certs)
    yield b
    b.close()


def test_login_round_trip_forwards_the_identity(edge: IdentityEdge, browser: Browser) -> None:
    response = browser.follow(edge.url("app", "/private/page?x=1"), login=ALICE)
    assert response.status_code == 200, (response.text, edge.log())
    seen = json.loads(response.text)
    assert seen["path"] == "/private/page?x=1"  # back on the path asked for
    assert seen["headers"]["x-user-email"] == "alice@example.com"
    assert seen["headers"]["x-user-name"] == "Alice Liddell"
    assert "session" not in seen["headers"].get("cookie", "")  # the edge's cookies stay here
    hosts = [h.url.host for h in browser.hops]
    assert hosts[:2] == ["app.edge.test", "auth.edge.test"] and "127.0.0.1" in hosts
    cookies = [h.headers.get("set-cookie", "") for h in browser.hops]
    session = next(c for c in cookies if c.startswith("__Host-session="))
    assert "Secure" in session and "HttpOnly" in session and "Domain" not in session
    # Logged in: the next request goes straight through.
    again = browser.get(edge.url("app", "/a"))
    assert again.status_code == 200 and json.loads(again.text)["path"] == "/a"


def test_the_email_rule_denies_another_user(edge: IdentityEdge, browser: Browser) -> None:
    response = browser.follow(edge.url("app", "/a"), login=MALLORY)
    assert response.status_code == 403
    assert str(response.url).startswith(edge.url("app", "/a"))


def test_logout_ends_the_session(edge: IdentityEdge, browser: Browser, certs: Certs) -> None:
    assert browser.follow(edge.url("app", "/a"), login=ALICE).status_code == 200
    sealed = browser.client.cookies.get("__Host-session")
    out = browser.get(edge.url("app", "/ngrok/logout"))
    assert out.status_code == 200 and "Logged out" in out.text
    assert "__Host-session=;" in out.headers["set-cookie"]
    after = browser.get(edge.url("app", "/a"))
    assert after.status_code == 302 and "auth.edge.test" in after.headers["location"]
    # The old cookie, replayed, no longer opens a session: it was deleted server-side.
    other = Browser(certs)
    try:
        other.client.cookies.set("__Host-session", sealed or "", domain="app.edge.test")
        assert other.get(edge.url("app", "/a")).status_code == 302
    finally:
        other.close()


def test_a_tampered_session_cookie_starts_a_login(edge: IdentityEdge, browser: Browser) -> None:
    assert browser.follow(edge.url("app", "/a"), login=ALICE).status_code == 200
    sealed = browser.client.cookies.get("__Host-session")
    assert sealed
    flipped = sealed[:-3] + ("A" if sealed[-3] != "A" else "B") + sealed[-2:]
    browser.client.cookies.set("__Host-session", flipped, domain="app.edge.test")
    response = browser.get(edge.url("app", "/a"))
    assert response.status_code == 302 and "auth.edge.test" in response.headers["location"]


def test_a_replayed_callback_is_refused(edge: IdentityEdge, browser: Browser) -> None:
    at_callback = browser.follow(edge.url("app", "/a"), login=ALICE, stop=CALLBACK)
    callback = at_callback.headers["location"]
    tx_cookies = dict(browser.client.cookies.items())
    first = browser.follow(callback)
    assert first.status_code == 200
    # The same callback again, even with the transaction cookie put back.
    for name, value in tx_cookies.items():
        if name.startswith("__Host-tx-"):
            browser.client.cookies.set(name, value, domain="auth.edge.test")
    again = browser.get(callback)
    assert again.status_code == 400 and again.headers["edgeward-error"] == "ERR_EDGEWARD_3441"


def test_a_handoff_link_is_useless_in_another_browser(
    edge: IdentityEdge, browser: Browser, certs: Certs
) -> None:
    at_handoff = browser.follow(edge.url("app", "/a"), login=ALICE, stop=HANDOFF)
    link = at_handoff.headers["location"]
    victim = Browser(certs)
    try:
        refused = victim.get(link)
        assert refused.status_code == 403  # no nonce cookie: login CSRF refused
        assert "__Host-session" not in refused.headers.get("set-cookie", "")
    finally:
        victim.close()
    used = browser.get(link)  # and the code was single-use
    assert used.status_code in (400, 403) and "edgeward-error" in used.headers


def test_return_paths_stay_on_the_host(edge: IdentityEdge, browser: Browser) -> None:
    for evil in ("//evil.test/x", "/\\evil.test", "https://evil.test/", "/%0d%0aSet-Cookie:x"):
        response = browser.follow(
            edge.url("app", "/ngrok/login?redirect_path=" + evil), login=ALICE
        )
        final = browser.hops[-2] if len(browser.hops) > 1 else response
        assert response.url.host == "app.edge.test", (evil, response.url)
        assert final.headers.get("location", "/").startswith(("/", "https://app.edge.test")), evil


def test_two_endpoints_share_the_auth_host(edge: IdentityEdge, browser: Browser) -> None:
    assert browser.follow(edge.url("app", "/a"), login=ALICE).status_code == 200
    # app2 has its own session cookie; the provider remembers alice: no password asked.
    browser.hops.clear()
    second = browser.follow(edge.url("app2", "/b"), login=None)
    assert second.status_code == 200 and json.loads(second.text)["path"] == "/b"
    assert not any(h.url.path == "/login" for h in browser.hops)
    # Each endpoint has its own session cookie (host-bound).
    assert browser.client.cookies.get("__Host-session", domain="app.edge.test") != (
        browser.client.cookies.get("__Host-session", domain="app2.edge.test")
    )


def test_only_real_preflights_pass_unauthenticated(edge: IdentityEdge, browser: Browser) -> None:
    preflight = browser.client.options(
        edge.url("cors", "/a"),
        headers={"origin": "https://x.edge.test", "access-control-request-method": "POST"},
    )
    assert preflight.status_code == 403  # passed the login; the email rule then denies it
    plain = browser.client.options(edge.url("cors", "/a"))
    assert plain.status_code == 401 and plain.headers["edgeward-error"] == "ERR_EDGEWARD_3440"
    no_cors = browser.client.options(
        edge.url("app", "/a"),
        headers={"origin": "https://x.edge.test", "access-control-request-method": "POST"},
    )
    assert no_cors.status_code == 401


def test_posts_without_a_session_get_401(edge: IdentityEdge, browser: Browser) -> None:
    response = browser.client.post(edge.url("app", "/a"), content=b"x")
    assert response.status_code == 401 and response.headers["edgeward-error"] == "ERR_EDGEWARD_3440"


def test_idle_and_max_session_expiry(
    provider: Provider, certs: Certs, upstream: Server, tmp_path: Path
) -> None:
    port = pick_port()
    endpoints = {
        "idle": policy(provider, port, "idle_session_duration: 2s"),
        "short": policy(provider, port, "max_session_duration: 4s"),
    }
    edge = start_identity_edge(tmp_path, certs, port, endpoints, upstream.url)
    browser = Browser(certs)
    try:
        assert browser.follow(edge.url("idle", "/a"), login=ALICE).status_code == 200
        time.sleep(2.5)  # idle for longer than the idle duration
        timed_out = browser.get(edge.url("idle", "/a"))
        assert timed_out.status_code == 302 and timed_out.headers["x-timed-out"] == "true"

        assert browser.follow(edge.url("short", "/a")).status_code == 200
        deadline = time.monotonic() + 30
        while True:  # stay active: only the max duration can end it
            response = browser.get(edge.url("short", "/a"))
            if response.status_code == 302:
                break
            assert response.status_code == 200 and time.monotonic() < deadline
            time.sleep(0.3)
        assert response.headers["x-max-reached"] == "true"
        assert response.headers["x-timed-out"] == "false"
    finally:
        browser.close()
        edge.stop()


def test_a_missing_discovery_document_is_a_warning_then_503(
    certs: Certs, upstream: Server, tmp_path: Path
) -> None:
    port = pick_port()
    dead = f"http://127.0.0.1:{pick_port()}"
    text = POLICY.format(issuer=dead, client_id="c", secret="s", extra="")
    edge = start_identity_edge(tmp_path, certs, port, {"app": text}, upstream.url)
    browser = Browser(certs)
    try:
        assert "no OpenID discovery document" in edge.log()
        response = browser.follow(edge.url("app", "/a"))
        assert response.status_code == 503
        assert response.headers["edgeward-error"] == "ERR_EDGEWARD_2227"
        assert response.headers["retry-after"]
    finally:
        browser.close()
        edge.stop()


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_sessions_survive_a_restart_in_a_shared_store(
    *,
    store: str,
    provider: Provider,
    certs: Certs,
    upstream: Server,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """Two edges one after the other on the same address, same keys and
    store: the second accepts the first one's session (several edges)."""
    if store == "redis":
        spec = request.getfixturevalue("redis_url")
    else:
        spec = f"sqlite:{tmp_path / 'sessions.db'}"
    port = pick_port()
    keys = write_keys(tmp_path / "keys.json", "k1")
    text = policy(provider, port)
    first = start_identity_edge(
        tmp_path / "one",
        certs,
        port,
        {"app": text},
        upstream.url,
        session_store=spec,
        keys_file=keys,
    )
    browser = Browser(certs)
    try:
        assert browser.follow(edge_url(port, "/a"), login=ALICE).status_code == 200
        first.stop()
        second = start_identity_edge(
            tmp_path / "two",
            certs,
            port,
            {"app": text},
            upstream.url,
            session_store=spec,
            keys_file=keys,
        )
        try:
            response = browser.get(edge_url(port, "/b"))
            assert response.status_code == 200, second.log()
            assert json.loads(response.text)["headers"]["x-user-email"] == "alice@example.com"
        finally:
            second.stop()
    finally:
        browser.close()
        first.stop()


def edge_url(port: int, path: str) -> str:
    return f"https://app.edge.test:{port}{path}"
