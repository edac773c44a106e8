"""SSO to the console and the API, end to end: `edgeward serve` with
`api.sso`, Canaille as a real OpenID Provider (with a TOTP second factor),
pysaml2's IdP as a real SAML IdP, and a scripted browser (httpx) following
the redirects and posting the forms as a browser would. Invitations bind
the first login; MFA is required; sessions, CSRF, logout, audit."""

from __future__ import annotations

import base64
import datetime
import os
import re
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from tests.admin.saml_idp import PASSWORD, IdP, running_idp
from tests.admin.sso_support import Browser, SsoEdge, sso_edge
from tests.agents.agents_support import Pki
from tests.identity.browser import (
    chromium,
    clear_cookies,
    cookies,
    log_in,
    skip_without_browser,
    wait_for,
)
from tests.identity.op import Provider, running_provider
from tests.proxy.proxy_support import free_port

PASSWORD_OF = "correct-horse-battery-1"
CALLBACK = re.compile(r"/login/oidc/callback\?")
ACS = re.compile(r"/login/saml/acs")


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with running_provider(otp=True) as op:
        yield op


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdP]:
    with running_idp(tmp_path_factory.mktemp("idp")) as running:
        yield running


@pytest.fixture(scope="module")
def edge(
    provider: Provider, idp: IdP, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SsoEdge]:
    port = free_port()
    client_id, secret = provider.client(f"http://127.0.0.1:{port}/login/oidc/callback")
    sso = f"""
    oidc:
      issuer_url: {provider.issuer}
      client_id: {client_id}
      client_secret: {secret}
      allow_insecure_loopback_issuer: true
    saml:
      idp_metadata: {idp.metadata_file}
    login_rate: {{attempts: 1000, per_seconds: 60}}
"""
    with sso_edge(tmp_path_factory.mktemp("sso-edge"), sso, port) as running:
        idp.trust_sp(httpx.get(running.url + "/saml/metadata").content)
        yield running


@pytest.fixture(scope="module")
def admin_key(edge: SsoEdge) -> str:
    return edge.admin_key()


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


class Person:
    def __init__(self, provider: Provider, login: str, email: str) -> None:
        self.login = login
        self.email = email
        secret = "".join(f"{b:02x}" for b in login.encode()[:8]).ljust(16, "0")
        self.secret = secret
        user = provider.user(login, email, PASSWORD_OF, f"{login.title()} Tester")
        user.secret_token = secret
        user.last_otp_login = datetime.datetime.now(datetime.UTC)  # enrolled already
        provider.backend.save(user)

    @property
    def credentials(self) -> tuple[str, str]:
        return (self.login, PASSWORD_OF)

    def otp(self) -> str:
        """The current TOTP code, from a window with 10 s left at least: the
        OP checks the current window only, and a code made just before the
        window turns is checked in the next one on a loaded machine."""
        import pyotp

        totp = pyotp.TOTP(base64.b32encode(self.secret.encode()).decode())
        left = totp.interval - time.time() % totp.interval
        if left < 10:
            time.sleep(left + 0.1)
        return totp.now()


_count = [0]


def person(provider: Provider, name: str) -> Person:
    _count[0] += 1
    login = f"{name}{_count[0]}"
    return Person(provider, login, f"{login}@example.com")


@contextmanager
def password_only(provider: Provider) -> Iterator[None]:
    """The OP asks for a password only (amr: [pwd]) while inside."""
    factors = provider.app.config["CANAILLE"]["AUTHENTICATION_FACTORS"]
    provider.app.config["CANAILLE"]["AUTHENTICATION_FACTORS"] = ["password"]
    try:
        yield
    finally:
        provider.app.config["CANAILLE"]["AUTHENTICATION_FACTORS"] = factors


def oidc_login(edge: SsoEdge, browser: Browser, who: Person, **kwargs: Any) -> httpx.Response:
    return browser.follow(edge.url + "/login/oidc", login=who.credentials, otp=who.otp, **kwargs)


def session_cookie(browser: Browser) -> str:
    return browser.client.cookies.get("edgeward-session") or ""


# --- OpenID Connect ---------------------------------------------------------------------------


def test_an_invited_developer_signs_in_with_oidc_and_mfa_and_uses_the_api(
    edge: SsoEdge, admin_key: str, provider: Provider, browser: Browser
) -> None:
    alice = person(provider, "alice")
    invitation = edge.invite(admin_key, alice.email, "developer", "bind:*.alice.internal")
    opened = browser.client.get(invitation["url"])
    assert opened.status_code == 200 and alice.email in opened.text
    assert opened.headers["content-security-policy"].startswith("default-src 'none'")
    done = oidc_login(edge, browser, alice)
    assert done.status_code == 200, (done.text, edge.log())
    assert str(done.url) == edge.url + "/console"
    assert f"Signed in as {alice.email} (developer, oidc)" in done.text
    cookie = next(
        h.headers["set-cookie"]
        for h in browser.hops
        if "edgeward-session=" in h.headers.get("set-cookie", "")
    )
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    # The invitation is used: its link no longer works.
    again = browser.client.get(invitation["url"])
    assert again.status_code == 400 and "already used" in again.text
    # The API with the session: reads with the cookie, writes with the CSRF header too.
    info = browser.client.get(edge.url + "/session").json()
    assert info["principal"]["type"] == "user" and info["principal"]["role"] == "developer"
    api = {"Ngrok-Version": "2"}
    listed = browser.client.get(edge.url + "/credentials", headers=api)
    assert listed.status_code == 200, listed.text
    body = {"acl": ["bind:app.alice.internal"]}
    refused = browser.client.post(edge.url + "/credentials", headers=api, json=body)
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["msg"]
    csrf = {**api, "X-CSRF-Token": info["csrf_token"]}
    made = browser.client.post(edge.url + "/credentials", headers=csrf, json=body)
    assert made.status_code == 201, made.text
    assert made.json()["owner_id"] == info["principal"]["id"]
    beyond = browser.client.post(
        edge.url + "/credentials", headers=csrf, json={"acl": ["bind:*.internal"]}
    )
    assert beyond.status_code == 403 and beyond.json()["error_code"] == "ERR_EDGEWARD_4106"
    assert browser.client.get(edge.url + "/api_keys", headers=api).json()["api_keys"] == []
    # The user is bound; the audit has the login and the session's requests.
    with edge.api(admin_key) as client:
        shown = client.get(f"/users/{invitation['user']['id']}").json()
    assert shown["sso_bound"] is True and shown["last_login_at"] is not None
    logins = edge.until(
        lambda: [e for e in edge.audit("login_succeeded.v0") if e["principal"]["id"] == shown["id"]]
    )
    assert (
        logins and logins[0]["object"]["method"] == "oidc" and "mfa" in logins[0]["object"]["amr"]
    )
    used = edge.until(
        lambda: [e for e in edge.audit("session_used.v0") if e["principal"]["id"] == shown["id"]]
    )
    assert {e["object"]["status_code"] for e in used} >= {200, 201, 403}
    # The first login bound the identity: an event of its own, with the invitation.
    (bound,) = edge.until(
        lambda: [e for e in edge.audit("user_bound.v0") if e["principal"]["id"] == shown["id"]]
    )
    assert bound["object"]["invitation"]["id"] == invitation["id"]
    assert bound["object"]["acl"] == ["bind:*.alice.internal"]
    assert bound["object"]["method"] == "oidc"
    # A second login finds the user by its SSO identity, without an invitation (not bound again).
    other = Browser()
    try:
        assert oidc_login(edge, other, alice).status_code == 200
    finally:
        other.close()
    edge.until(
        lambda: (
            len(
                [e for e in edge.audit("login_succeeded.v0") if e["principal"]["id"] == shown["id"]]
            )
            == 2
        )
    )
    assert len([e for e in edge.audit("user_bound.v0") if e["principal"]["id"] == shown["id"]]) == 1


def test_a_login_without_mfa_is_refused(
    edge: SsoEdge, admin_key: str, provider: Provider, browser: Browser
) -> None:
    bob = person(provider, "bob")
    invitation = edge.invite(admin_key, bob.email, "admin")
    browser.client.get(invitation["url"])
    with password_only(provider):
        refused = oidc_login(edge, browser, bob)
    assert refused.status_code == 403
    assert "Multi-factor authentication required" in refused.text
    assert not session_cookie(browser)
    failed = edge.until(
        lambda: [e for e in edge.audit("login_failed.v0") if e["object"].get("email") == bob.email]
    )
    assert failed and "no MFA" in failed[-1]["object"]["reason"]
    assert "amr [pwd]" in failed[-1]["object"]["reason"]
    # The invitation was not used by the refused login: with MFA it works
    # (in a fresh browser: the OP would reuse its password-only session).
    other = Browser()
    try:
        other.client.get(invitation["url"])
        assert oidc_login(edge, other, bob).status_code == 200
    finally:
        other.close()


def test_no_invitation_no_account(edge: SsoEdge, provider: Provider, browser: Browser) -> None:
    dave = person(provider, "dave")
    refused = oidc_login(edge, browser, dave)
    assert refused.status_code == 403 and "Ask an admin for an invitation" in refused.text
    edge.until(
        lambda: [e for e in edge.audit("login_failed.v0") if e["object"].get("email") == dave.email]
    )


def test_an_invitation_binds_only_its_email(
    edge: SsoEdge, admin_key: str, provider: Provider, browser: Browser
) -> None:
    erin, frank = person(provider, "erin"), person(provider, "frank")
    invitation = edge.invite(admin_key, erin.email, "auditor")
    browser.client.get(invitation["url"])
    refused = oidc_login(edge, browser, frank)
    assert refused.status_code == 403 and f"This invitation is for {erin.email}" in refused.text
    other = Browser()
    try:
        other.client.get(invitation["url"])
        assert oidc_login(edge, other, erin).status_code == 200
    finally:
        other.close()


def test_an_expired_invitation_is_refused(edge: SsoEdge, browser: Browser) -> None:
    from edgeward.admin import users
    from edgeward.store import Store

    with Store.open(edge.directory / "state") as store:
        made = users.invite(
            store, email="late@example.com", role="auditor", ttl=datetime.timedelta(seconds=-1)
        )
    answer = browser.client.get(f"{edge.url}/invite/{made.token.text}")
    assert answer.status_code == 400 and "expired" in answer.text
    forged = browser.client.get(f"{edge.url}/invite/{made.token.text[:-2]}xx")
    assert forged.status_code == 400 and "not valid" in forged.text


def test_a_replayed_or_transplanted_callback_is_refused(
    edge: SsoEdge, admin_key: str, provider: Provider, browser: Browser
) -> None:
    gina = person(provider, "gina")
    browser.client.get(edge.invite(admin_key, gina.email, "auditor")["url"])
    at_callback = oidc_login(edge, browser, gina, stop=CALLBACK)
    callback = at_callback.headers["location"]
    victim = Browser()  # login CSRF: the callback opened in another browser
    try:
        stolen = victim.follow(callback)
        assert stolen.status_code == 400 and not victim.client.cookies.get("edgeward-session")
    finally:
        victim.close()
    # The transplanted attempt used the state up: this browser's login must start again.
    assert browser.follow(callback).status_code == 400
    assert oidc_login(edge, browser, gina).status_code == 200
    at_callback = oidc_login(edge, Browser(), gina, stop=CALLBACK)
    edge.until(
        lambda: (
            {"the callback came to another browser", "unknown, expired or replayed state"}
            <= {e["object"]["reason"] for e in edge.audit("login_failed.v0")}
        )
    )


def test_logout_ends_the_session_server_side(
    edge: SsoEdge, admin_key: str, provider: Provider, browser: Browser
) -> None:
    hana = person(provider, "hana")
    browser.client.get(edge.invite(admin_key, hana.email, "admin")["url"])
    assert oidc_login(edge, browser, hana).status_code == 200
    token = session_cookie(browser)
    csrf = browser.client.get(edge.url + "/session").json()["csrf_token"]
    stale = browser.client.post(edge.url + "/logout", data={"csrf_token": "wrong"})
    assert stale.status_code == 403
    out = browser.client.post(edge.url + "/logout", data={"csrf_token": csrf})
    assert out.status_code == 200 and "Signed out" in out.text
    assert "Max-Age=0" in out.headers["set-cookie"]
    # The old cookie, replayed, opens nothing: the session was deleted in the store.
    with httpx.Client(base_url=edge.url, cookies={"edgeward-session": token}) as replay:
        assert replay.get("/session").status_code == 401
        assert replay.get("/credentials", headers={"Ngrok-Version": "2"}).status_code == 401
        assert replay.get("/console").status_code == 303
    edge.until(lambda: [e for e in edge.audit("logout.v0") if e["object"]["ip"] == "127.0.0.1"])


# --- SAML -------------------------------------------------------------------------------------


@pytest.fixture
def saml_user(edge: SsoEdge, admin_key: str, idp: IdP, browser: Browser) -> Iterator[str]:
    _count[0] += 1
    email = f"carol{_count[0]}@example.com"
    browser.client.get(edge.invite(admin_key, email, "auditor")["url"])
    idp.behaviour = type(idp.behaviour)(email=email)
    yield email
    idp.behaviour = type(idp.behaviour)()


def test_saml_login_with_mfa(edge: SsoEdge, idp: IdP, saml_user: str, browser: Browser) -> None:
    done = browser.follow(edge.url + "/login/saml")
    assert done.status_code == 200, (done.text, edge.log())
    assert f"Signed in as {saml_user} (auditor, saml)" in done.text
    event = edge.until(
        lambda: [e for e in edge.audit("login_succeeded.v0") if e["object"]["email"] == saml_user]
    )[-1]
    assert event["object"]["method"] == "saml"
    assert event["object"]["authn_context"] == ["https://refeds.org/profile/mfa"]
    bound = [e for e in edge.audit("user_bound.v0") if e["object"]["email"] == saml_user]
    assert [e["object"]["method"] for e in bound] == ["saml"]


def test_a_replayed_saml_response_is_refused(
    edge: SsoEdge, idp: IdP, saml_user: str, browser: Browser
) -> None:
    at_acs = browser.follow(edge.url + "/login/saml", stop=ACS)
    from tests.admin.sso_support import forms

    form = forms(at_acs.text)
    first = browser.client.post(edge.url + "/login/saml/acs", data=form.inputs)
    assert first.status_code == 303
    again = browser.client.post(edge.url + "/login/saml/acs", data=form.inputs)
    assert again.status_code == 400
    # A new login's request id does not make the old assertion acceptable either.
    browser.follow(edge.url + "/login/saml", stop=ACS)
    third = browser.client.post(edge.url + "/login/saml/acs", data=form.inputs)
    assert third.status_code == 400
    edge.until(
        lambda: [
            e
            for e in edge.audit("login_failed.v0")
            if e["object"]["reason"] == "SAML response to no outstanding request"
        ]
    )


def saml_failures(edge: SsoEdge) -> list[dict[str, Any]]:
    return [e for e in edge.audit("login_failed.v0") if e["object"]["method"] == "saml"]


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ({"context": PASSWORD}, 403, "no MFA"),
        ({"sign": False}, 401, "SAML response refused"),
        ({"tamper": True}, 401, "SAML response refused"),
        ({"audience": "https://other.example/sp"}, 401, "SAML response refused"),
        ({"destination": "http://127.0.0.1:9/login/saml/acs"}, 401, "SAML response refused"),
        ({"lifetime_minutes": -10}, 401, "SAML response refused"),
    ],
    ids=["no-mfa", "unsigned", "tampered", "audience", "recipient", "expired"],
)
def test_a_bad_saml_response_is_refused(  # noqa: PLR0917
    edge: SsoEdge,
    idp: IdP,
    saml_user: str,
    browser: Browser,
    change: dict[str, Any],
    status: int,
    reason: str,
) -> None:
    for name, value in change.items():
        setattr(idp.behaviour, name, value)
    before = len(saml_failures(edge))
    at_acs = browser.follow(edge.url + "/login/saml", stop=ACS)
    from tests.admin.sso_support import forms

    form = forms(at_acs.text)
    refused = browser.client.post(edge.url + "/login/saml/acs", data=form.inputs)
    assert refused.status_code == status, refused.text
    assert not session_cookie(browser)
    failed = edge.until(lambda: saml_failures(edge)[before:])[-1]["object"]
    assert reason in failed["reason"], failed


# --- break-glass, the IdP down, rate limits ---------------------------------------------------


@pytest.fixture(scope="module")
def lonely_edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SsoEdge]:
    """An edge whose OpenID Provider is down, with a tight login rate."""
    dead = free_port()
    sso = f"""
    oidc:
      issuer_url: http://127.0.0.1:{dead}
      client_id: edge
      client_secret: s
      allow_insecure_loopback_issuer: true
    login_rate: {{attempts: 6, per_seconds: 3600}}
"""
    with sso_edge(tmp_path_factory.mktemp("lonely-edge"), sso) as running:
        yield running


def enroll(edge: SsoEdge, name: str, password: str) -> dict[str, str]:
    import json
    import subprocess

    from tests.agents.agents_support import EDGEWARD

    proc = subprocess.run(
        [*EDGEWARD, "break-glass", "enroll", "--username", name, "--password-stdin", "--json",
         "--state-dir", str(edge.directory / "state")],
        input=password + "\n", capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return dict(json.loads(proc.stdout))


def break_glass(
    browser: Browser, edge: SsoEdge, name: str, password: str, code: str
) -> httpx.Response:
    from tests.admin.sso_support import forms

    page = browser.client.get(edge.url + "/login")
    csrf = forms(page.text).inputs["csrf_token"]
    data = {"username": name, "password": password, "code": code, "csrf_token": csrf}
    return browser.client.post(edge.url + "/login/break-glass", data=data)


def test_break_glass_works_when_the_idp_is_down(lonely_edge: SsoEdge, browser: Browser) -> None:
    import pyotp

    edge = lonely_edge
    enrolled = enroll(edge, "ops", "a-long-break-glass-password")
    assert enrolled["uri"].startswith("otpauth://totp/edgeward:ops?secret=")
    down = browser.client.get(edge.url + "/login/oidc")
    assert down.status_code == 503 and "break-glass" in down.text
    code = pyotp.TOTP(enrolled["secret"]).now()
    wrong = break_glass(browser, edge, "ops", "not-the-password", code)
    assert wrong.status_code == 401
    signed = break_glass(browser, edge, "ops", "a-long-break-glass-password", code)
    assert signed.status_code == 303, signed.text
    home = browser.client.get(edge.url + "/console")
    assert "Signed in as bg_ops (admin, break-glass)" in home.text
    # The session is an admin on the API.
    listed = browser.client.get(edge.url + "/credentials", headers={"Ngrok-Version": "2"})
    assert listed.status_code == 200
    # The same code is good once.
    other = Browser()
    try:
        assert (
            break_glass(other, edge, "ops", "a-long-break-glass-password", code).status_code == 401
        )
    finally:
        other.close()
    loud = edge.until(lambda: edge.audit("break_glass_login.v0"))
    assert loud and loud[0]["principal"] == {"id": "bg_ops", "type": "break_glass", "role": "admin"}
    assert "BREAK-GLASS login by 'ops'" in edge.log()
    edge.until(
        lambda: [
            e for e in edge.audit("login_failed.v0") if "username 'ops'" in e["object"]["reason"]
        ]
    )


def test_logins_are_rate_limited_per_address(lonely_edge: SsoEdge) -> None:
    statuses = []
    browser = Browser()
    try:
        for _ in range(8):
            statuses.append(
                break_glass(browser, lonely_edge, "nobody", "x" * 12, "000000").status_code
            )
    finally:
        browser.close()
    assert 429 in statuses and statuses[-1] == 429
    limited = lonely_edge.until(
        lambda: [
            e
            for e in lonely_edge.audit("login_failed.v0")
            if e["object"]["reason"] == "rate limited"
        ]
    )
    assert limited


def test_the_login_form_needs_its_csrf_token(edge: SsoEdge, browser: Browser) -> None:
    # A cross-site form post carries no login-CSRF cookie: refused before any check.
    data = {"username": "ops", "password": "p" * 12, "code": "123456", "csrf_token": "forged"}
    refused = browser.client.post(edge.url + "/login/break-glass", data=data)
    assert refused.status_code == 403 and "stale" in refused.text
    edge.until(
        lambda: [
            e
            for e in edge.audit("login_failed.v0")
            if e["object"]["reason"].startswith("login form without its CSRF token")
        ]
    )


def test_an_admin_mints_for_a_user_and_a_role_change_ends_its_sessions(
    edge: SsoEdge, admin_key: str, provider: Provider, browser: Browser
) -> None:
    ivy = person(provider, "ivy")
    invitation = edge.invite(admin_key, ivy.email, "developer", "bind:*.ivy.internal")
    uid = invitation["user"]["id"]
    browser.client.get(invitation["url"])
    assert oidc_login(edge, browser, ivy).status_code == 200
    api = {"Ngrok-Version": "2"}
    with edge.api(admin_key) as admin:
        made = admin.post("/credentials", json={"owner_id": uid, "acl": ["bind:a.ivy.internal"]})
        assert made.status_code == 201, made.text
        mine = browser.client.get(edge.url + "/credentials", headers=api).json()["credentials"]
        assert [c["id"] for c in mine] == [made.json()["id"]]
        changed = admin.patch(f"/users/{uid}", json={"role": "auditor"})
        assert changed.status_code == 200
    # The session carried the old role: it is gone, the user signs in again.
    assert browser.client.get(edge.url + "/session").status_code == 401
    assert browser.client.get(edge.url + "/credentials", headers=api).status_code == 401


def test_over_https_the_session_cookie_is_host_bound_and_secure(
    tmp_path_factory: pytest.TempPathFactory, pki: Pki
) -> None:
    import pyotp

    sso = f"""
    oidc:
      issuer_url: http://127.0.0.1:{free_port()}
      client_id: edge
      allow_insecure_loopback_issuer: true
"""
    directory = tmp_path_factory.mktemp("tls-edge")
    with sso_edge(directory, sso, tls=(pki.ingress_cert, pki.ingress_key)) as edge:
        enrolled = enroll(edge, "ops", "a-long-break-glass-password")
        browser = Browser(verify=ssl.create_default_context(cafile=str(pki.ca)))
        try:
            page = browser.client.get(edge.url + "/login")
            assert page.headers["set-cookie"].startswith("__Host-edgeward-login-csrf=")
            code = pyotp.TOTP(enrolled["secret"]).now()
            signed = break_glass(browser, edge, "ops", "a-long-break-glass-password", code)
            assert signed.status_code == 303, signed.text
            cookie = next(
                c for c in signed.headers.get_list("set-cookie") if "edgeward-session=" in c
            )
            assert cookie.startswith("__Host-edgeward-session=")
            for flag in ("; Path=/", "; HttpOnly", "; SameSite=Lax", "; Secure"):
                assert flag in cookie
            assert "Domain=" not in cookie
            home = browser.client.get(edge.url + "/console")
            assert "break-glass" in home.text
            assert home.headers["content-security-policy"].startswith("default-src 'none'")
            assert home.headers["x-frame-options"] == "DENY"
        finally:
            browser.close()


@skip_without_browser
@pytest.mark.slow
def test_in_chromium_an_invited_admin_signs_in_with_oidc_and_mfa(
    edge: SsoEdge, admin_key: str, provider: Provider, tmp_path: Path
) -> None:
    """Debian's chromium, headless: the invitation link, the OP's password
    and TOTP pages, the console; then a password-only login refused with
    a clear page. Screenshots go to the test's tmp dir, artifacts/."""
    from selenium.webdriver.common.by import By

    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    jane = person(provider, "jane")
    invitation = edge.invite(admin_key, jane.email, "admin")
    with chromium(SimpleNamespace(spki_sha256="")) as driver:  # type: ignore[arg-type]
        driver.get(invitation["url"])
        assert "You are invited" in driver.page_source
        driver.save_screenshot(str(artifacts / "1-invitation.png"))
        driver.find_element(By.ID, "oidc").click()
        log_in(driver, jane.login, PASSWORD_OF)
        wait_for(driver, lambda d: d.find_elements(By.NAME, "otp"))
        driver.save_screenshot(str(artifacts / "2-second-factor.png"))
        field = driver.find_element(By.NAME, "otp")
        field.send_keys(jane.otp())
        field.submit()
        wait_for(driver, lambda d: d.current_url == edge.url + "/console")
        assert f"Signed in as {jane.email} (admin, oidc)" in driver.page_source
        driver.save_screenshot(str(artifacts / "3-console.png"))
        jar = cookies(driver)
        session = jar["edgeward-session@127.0.0.1"]
        assert session["httpOnly"] and session["sameSite"] == "Lax"
        # Sign out with the console's form (its CSRF token), then a login without MFA.
        driver.find_element(By.TAG_NAME, "button").click()
        wait_for(driver, lambda d: "Signed out" in d.page_source)
        clear_cookies(driver)
        with password_only(provider):
            driver.get(edge.url + "/login/oidc")
            log_in(driver, jane.login, PASSWORD_OF)
            wait_for(driver, lambda d: "Multi-factor authentication required" in d.page_source)
        driver.save_screenshot(str(artifacts / "4-no-mfa-refused.png"))
        assert "edgeward-session@127.0.0.1" not in cookies(driver)
    assert all((artifacts / n).stat().st_size > 0 for n in os.listdir(artifacts))


def test_a_refused_saml_assertion_cannot_come_back(
    edge: SsoEdge, idp: IdP, saml_user: str, browser: Browser
) -> None:
    """A response refused after verification (here: no MFA) leaves its
    request open, but its assertion's ID is recorded: posted again, it is
    refused as a replay (the same ID), not evaluated afresh."""
    from tests.admin.sso_support import forms

    idp.behaviour.context = PASSWORD
    at_acs = browser.follow(edge.url + "/login/saml", stop=ACS)
    form = forms(at_acs.text)
    assert browser.client.post(edge.url + "/login/saml/acs", data=form.inputs).status_code == 403
    again = browser.client.post(edge.url + "/login/saml/acs", data=form.inputs)
    assert again.status_code == 401 and not session_cookie(browser)
    edge.until(
        lambda: [
            e
            for e in edge.audit("login_failed.v0")
            if e["object"]["reason"] == "replayed SAML assertion"
        ]
    )


def test_the_session_answer_validates_against_the_document(
    edge: SsoEdge, admin_key: str, provider: Provider, browser: Browser
) -> None:
    from openapi_core import OpenAPI
    from openapi_core.testing import MockRequest, MockResponse

    from edgeward.admin.openapi import document

    spec = OpenAPI.from_dict(document())

    def validate(answer: httpx.Response) -> None:
        request = MockRequest(edge.url, "get", "/session")
        kind = answer.headers["content-type"].split(";")[0]
        spec.validate_response(
            request, MockResponse(answer.content, status_code=answer.status_code, content_type=kind)
        )

    validate(browser.client.get(edge.url + "/session"))  # 401, the API's error body
    kim = person(provider, "kim")
    browser.client.get(edge.invite(admin_key, kim.email, "auditor")["url"])
    assert oidc_login(edge, browser, kim).status_code == 200
    answer = browser.client.get(edge.url + "/session")
    assert answer.status_code == 200 and answer.json()["method"] == "oidc"
    validate(answer)
