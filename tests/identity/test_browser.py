"""The identity scenarios in a real browser (Debian's chromium, headless,
driven by selenium) against a real OpenID Provider (Canaille) and
`edgeward serve`: the brief's openid-connect example with its email rule."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from tests.identity.browser import (
    chromium,
    clear_cookies,
    cookies,
    log_in,
    page_json,
    set_cookie,
    skip_without_browser,
    visited,
    wait_for,
)
from tests.identity.op import Provider
from tests.identity.support import Certs, IdentityEdge, pick_port, start_identity_edge
from tests.identity.test_oidc_e2e import policy
from tests.policy.e2e import Server

pytestmark = [skip_without_browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def edge(
    provider: Provider, certs: Certs, upstream: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IdentityEdge]:
    port = pick_port()
    endpoints = {
        "app": policy(provider, port),
        "app2": policy(provider, port),
        "idle": policy(provider, port, "idle_session_duration: 2s"),
        "short": policy(provider, port, "max_session_duration: 3s"),
    }
    running = start_identity_edge(
        tmp_path_factory.mktemp("browser"), certs, port, endpoints, upstream.url
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def driver(certs: Certs) -> Iterator[Any]:
    with chromium(certs) as d:
        yield d


@pytest.fixture(autouse=True)
def fresh(driver: Any) -> None:
    clear_cookies(driver)  # every scenario starts logged out, at the edge and the provider
    visited(driver)


def test_login_lands_on_the_page_asked_for_with_the_identity(
    driver: Any, edge: IdentityEdge, provider: Provider
) -> None:
    driver.get(edge.url("app", "/private/page?x=1"))
    assert driver.current_url.startswith(provider.issuer)  # the provider's login page
    log_in(driver, "alice", "alice-password-1")
    wait_for(driver, lambda d: d.current_url == edge.url("app", "/private/page?x=1"))
    seen = page_json(driver)
    assert seen["path"] == "/private/page?x=1"
    assert seen["headers"]["x-user-email"] == "alice@example.com"
    assert seen["headers"]["x-user-name"] == "Alice Liddell"
    jar = cookies(driver)
    session = jar["__Host-session@app.edge.test"]
    assert session["secure"] and session["httpOnly"] and session["sameSite"] == "Lax"
    assert not any(name.startswith("__Host-tx-") for name in jar)  # the transaction is over


def test_the_email_rule_denies_another_user(driver: Any, edge: IdentityEdge) -> None:
    driver.get(edge.url("app", "/a"))
    log_in(driver, "mallory", "mallory-password-1")
    wait_for(driver, lambda d: d.current_url.startswith(edge.url("app")))
    assert "x-user-email" not in driver.page_source
    assert "HTTP ERROR 403" in driver.execute_script("return document.body.innerText")
    # The same browser, logged out and in as alice, gets through.
    driver.get(edge.url("app", "/ngrok/logout"))
    clear_cookies(driver)
    driver.get(edge.url("app", "/a"))
    log_in(driver, "alice", "alice-password-1")
    wait_for(driver, lambda d: d.current_url == edge.url("app", "/a"))
    assert page_json(driver)["headers"]["x-user-email"] == "alice@example.com"


def test_logout(driver: Any, edge: IdentityEdge, provider: Provider) -> None:
    driver.get(edge.url("app", "/a"))
    log_in(driver, "alice", "alice-password-1")
    wait_for(driver, lambda d: d.current_url == edge.url("app", "/a"))
    driver.get(edge.url("app", "/ngrok/logout"))
    assert "Logged out" in driver.page_source
    assert "__Host-session@app.edge.test" not in cookies(driver)
    driver.get(edge.url("app", "/a"))  # the provider still knows alice: a new login, no form
    wait_for(driver, lambda d: d.current_url == edge.url("app", "/a"))
    assert any(urlsplit(url).path == "/oauth2/callback" for url in visited(driver))


def test_idle_and_max_expiry(driver: Any, edge: IdentityEdge) -> None:
    driver.get(edge.url("idle", "/a"))
    log_in(driver, "alice", "alice-password-1")
    wait_for(driver, lambda d: d.current_url == edge.url("idle", "/a"))
    first = cookies(driver)["__Host-session@idle.edge.test"]["value"]
    visited(driver)
    time.sleep(2.5)  # idle past the idle duration
    driver.get(edge.url("idle", "/a"))
    wait_for(driver, lambda d: d.current_url == edge.url("idle", "/a"))
    assert any(
        urlsplit(url).path == "/oauth2/start" for url in visited(driver)
    )  # a new login was needed
    assert cookies(driver)["__Host-session@idle.edge.test"]["value"] != first

    driver.get(edge.url("short", "/a"))
    wait_for(driver, lambda d: d.current_url == edge.url("short", "/a"))
    visited(driver)
    deadline = time.monotonic() + 30
    while not any(
        urlsplit(url).path == "/oauth2/start" for url in visited(driver)
    ):  # active, until max
        assert time.monotonic() < deadline, "the max session duration never ended the session"
        time.sleep(0.3)
        driver.get(edge.url("short", "/a"))


def test_a_tampered_cookie_is_not_a_session(driver: Any, edge: IdentityEdge) -> None:
    driver.get(edge.url("app", "/a"))
    log_in(driver, "alice", "alice-password-1")
    wait_for(driver, lambda d: d.current_url == edge.url("app", "/a"))
    cookie = dict(cookies(driver)["__Host-session@app.edge.test"])
    value = cookie["value"]
    cookie["value"] = value[:10] + ("A" if value[10] != "A" else "B") + value[11:]
    set_cookie(driver, cookie)
    visited(driver)
    driver.get(edge.url("app", "/a"))
    wait_for(driver, lambda d: d.current_url == edge.url("app", "/a"))
    assert any(urlsplit(url).path == "/oauth2/start" for url in visited(driver))  # re-authenticated
    assert cookies(driver)["__Host-session@app.edge.test"]["value"] not in (value, cookie["value"])


def test_a_replayed_callback_is_refused(driver: Any, edge: IdentityEdge) -> None:
    driver.get(edge.url("app", "/a"))
    log_in(driver, "alice", "alice-password-1")
    wait_for(driver, lambda d: d.current_url == edge.url("app", "/a"))
    callback = next(url for url in visited(driver) if urlsplit(url).path == "/oauth2/callback")
    driver.get(callback)
    assert "Login expired" in driver.page_source
    assert driver.current_url == callback


def test_two_endpoints_share_one_auth_host(driver: Any, edge: IdentityEdge) -> None:
    driver.get(edge.url("app", "/a"))
    log_in(driver, "alice", "alice-password-1")
    wait_for(driver, lambda d: d.current_url == edge.url("app", "/a"))
    visited(driver)
    driver.get(edge.url("app2", "/b"))
    wait_for(driver, lambda d: d.current_url == edge.url("app2", "/b"))
    urls = visited(driver)
    assert any(url.startswith(f"https://auth.edge.test:{edge.port}/oauth2/") for url in urls)
    assert page_json(driver)["headers"]["x-user-email"] == "alice@example.com"
    jar = cookies(driver)
    assert "__Host-session@app.edge.test" in jar and "__Host-session@app2.edge.test" in jar
