"""The web console against `edgeward serve` as a process: people sign in
with OIDC + TOTP at Canaille (a real OpenID Provider), httpx as the
browser for the role and CSRF rules, Debian's headless chromium for the
walk through (an authtoken made in the console binds a real `edgeward
agent`, revoking it there drops the agent), screenshots in artifacts/."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from tests.admin.console_support import (
    ConsoleEdge,
    audit_types,
    console_edge,
    parse,
    post_form,
    shown,
    sign_in_chromium,
)
from tests.admin.sso_support import Browser
from tests.admin.test_sso import Person, oidc_login, person
from tests.agents.agents_support import TIMEOUT, Pki, Token, curl
from tests.identity.browser import chromium, clear_cookies, skip_without_browser, wait_for
from tests.identity.op import Provider, running_provider

GRANT = "bind:*.dev.apps.example.com"
BAD_POLICY = """on_http_request:
  - name: block admin
    expressions: ["req.url.path.startsWith('/admin')"]
    actions:
      - type: dney
"""
POLICY = """on_http_request:
  - name: block admin
    expressions: ["req.url.path.startsWith('/admin')"]
    actions:
      - type: deny
        config: {status_code: 403}
"""
CASES = """cases:
  - name: admin is denied
    request: {url: "https://a.example.com/admin"}
    expect: {status: 403}
  - name: home is denied too (a wrong expectation)
    request: {url: "https://a.example.com/"}
    expect: {status: 403}
"""


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with running_provider(otp=True) as op:
        yield op


@pytest.fixture(scope="module")
def edge(
    provider: Provider, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConsoleEdge]:
    with console_edge(tmp_path_factory.mktemp("console-edge"), pki, provider) as running:
        yield running


@pytest.fixture(scope="module")
def admin_key(edge: ConsoleEdge) -> str:
    return edge.sso.admin_key()


def sign_in(
    edge: ConsoleEdge, provider: Provider, admin_key: str, role: str, *acl: str
) -> tuple[Browser, Person]:
    """A person invited with `role` (through the API) signed in with OIDC + TOTP."""
    who = person(provider, role)
    browser = Browser()
    browser.client.get(edge.sso.invite(admin_key, who.email, role, *acl)["url"])
    done = oidc_login(edge.sso, browser, who)
    assert done.status_code == 200 and f"Signed in as {who.email} ({role}, oidc)" in done.text
    return browser, who


@pytest.fixture(scope="module")
def admin(edge: ConsoleEdge, provider: Provider, admin_key: str) -> Iterator[Browser]:
    browser, _ = sign_in(edge, provider, admin_key, "admin")
    yield browser
    browser.close()


def test_every_page_answers_with_the_strict_csp_and_its_stylesheet(
    edge: ConsoleEdge, admin: Browser
) -> None:
    paths = ("", "/endpoints", "/sessions", "/authtokens", "/users", "/audit", "/policy")
    for path in (*paths, "/ip-policies", "/event-destinations"):
        page = admin.client.get(f"{edge.url}/console{path}")
        assert page.status_code == 200, (path, page.text)
        csp = page.headers["content-security-policy"]
        assert csp.startswith("default-src 'none'") and "style-src 'self'" in csp
        assert "<script" not in page.text and "style=" not in page.text
        assert '<link rel="stylesheet" href="/console/static/console.css">' in page.text
    css = admin.client.get(edge.url + "/console/static/console.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    # The static endpoint, with its policy, is on the endpoints page.
    endpoints = admin.client.get(edge.url + "/console/endpoints").text
    assert "cfg_site" in endpoints and "block admin" not in endpoints  # the policy's rule name
    assert "no admin" in endpoints
    # Signed out: every page sends you to the sign-in page.
    other = Browser()
    try:
        for path in ("", "/authtokens", "/audit"):
            assert other.client.get(f"{edge.url}/console{path}").headers["location"] == "/login"
    finally:
        other.close()


def test_roles_apply_as_in_the_api(
    edge: ConsoleEdge, provider: Provider, admin_key: str, admin: Browser
) -> None:
    # The admin invites a developer in the console, with a grant.
    email = f"dev{os.getpid()}@example.com"
    invited = post_form(
        admin, edge.url + "/console/invitations", edge.url + "/console/users",
        email=email, role="developer", acl=GRANT,
    )  # fmt: skip
    assert invited.status_code == 201, invited.text
    link = shown(invited.text, "invite-url")
    assert link.startswith(edge.url + "/invite/")
    # The admin mints an authtoken for itself.
    made = post_form(
        admin, edge.url + "/console/authtokens", edge.url + "/console/authtokens",
        description="admin's", acl="bind:*.apps.example.com",
    )  # fmt: skip
    assert made.status_code == 201, made.text
    admins_token = re.search(r"<code>(at_\w+)</code> is made", made.text)
    assert admins_token and shown(made.text, "new-token").startswith("ewt_")
    # The developer accepts the invitation (a person at the OP with that email).
    dev = Person(provider, f"dev{os.getpid()}", email)
    browser = Browser()
    try:
        browser.client.get(link)
        assert oidc_login(edge.sso, browser, dev).status_code == 200
        page = edge.url + "/console/authtokens"
        beyond = post_form(
            browser, page, page, description="too wide", acl="bind:*.apps.example.com"
        )
        assert beyond.status_code == 403 and "goes beyond what this key may grant" in beyond.text
        within = post_form(
            browser, page, page, description="laptop", acl="bind:alice.dev.apps.example.com"
        )
        assert within.status_code == 201, within.text
        listing = browser.client.get(page).text
        assert "laptop" in listing and admins_token.group(1) not in listing
        assert "too wide" not in listing
        # Its users page shows itself only, no invitations; the audit log is not its to read.
        users = browser.client.get(edge.url + "/console/users").text
        assert email in users and 'id="invitations"' not in users and 'id="invite"' not in users
        assert "admin@" not in users
        assert browser.client.get(edge.url + "/console/audit").status_code == 403
        # The static endpoint is not a developer's.
        assert "cfg_site" not in browser.client.get(edge.url + "/console/endpoints").text
        # The admin sees the developer's authtoken and the audit of both mints.
        assert "laptop" in admin.client.get(page).text
        audit = admin.client.get(edge.url + "/console/audit", params={"type": "credential_created"})
        assert audit.text.count("<code>credential_created.v0</code>") == 2
        assert "invitation_created.v0" not in audit.text
    finally:
        browser.close()


def test_a_form_without_the_csrf_token_is_refused(edge: ConsoleEdge, admin: Browser) -> None:
    before = audit_types(edge).count("credential_created.v0")
    url = edge.url + "/console/authtokens"
    bare = admin.client.post(url, data={"description": "forged"})
    assert bare.status_code == 403 and "CSRF" in bare.text
    wrong = admin.client.post(url, data={"description": "forged", "csrf_token": "x" * 43})
    assert wrong.status_code == 403
    # A JSON body is not a form, even with the right token.
    page = admin.client.get(url).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    as_json = admin.client.post(url, json={"description": "forged", "csrf_token": token.group(1)})
    assert as_json.status_code == 403
    assert "forged" not in admin.client.get(url).text
    assert audit_types(edge).count("credential_created.v0") == before


def test_the_policy_editor_locates_errors_and_runs_cases(edge: ConsoleEdge, admin: Browser) -> None:
    page = edge.url + "/console/policy"
    bad = post_form(admin, page, page, policy=BAD_POLICY, cases="", run="check")
    assert bad.status_code == 200
    assert 'id="check-failed"' in bad.text
    # The diagnostic names line 5, column 15 (`dney`) and sits under that line.
    assert re.search(r"policy:5:\d+: on_http_request\[0\]\.actions\[0\]\.type: error: ", bad.text)
    assert '<li class="bad">      - type: dney<span class="diag error">' in bad.text
    good = post_form(admin, page, page, policy=POLICY, cases="", run="check")
    assert "ok (1 on_http_request)" in good.text
    tested = post_form(admin, page, page, policy=POLICY, cases=CASES, run="test")
    assert "1 passed, 1 failed" in tested.text
    assert (
        '<td class="pass">pass</td>' in tested.text and '<td class="fail">FAIL</td>' in tested.text
    )
    # The static endpoint's policy opens in the editor.
    opened = admin.client.get(page, params={"endpoint": "cfg_site"}).text
    assert "startsWith(&#39;/admin&#39;)" in opened and "no admin" in opened


CLOUD = "http://console-cloud.example.com"
CLOUD_POLICY = """on_http_request:
  - name: hello
    actions:
      - type: custom-response
        config: {status_code: 200, body: "made in the console"}
"""


def public(edge: ConsoleEdge, body: str) -> bool:
    """Whether the edge's web listener answers `body` for the cloud endpoint's host."""
    answer = httpx.get(
        f"http://127.0.0.1:{edge.agents.web_port}/",
        headers={"host": "console-cloud.example.com"},
        timeout=30,
    )
    return answer.text == body


def create_endpoint(admin: Browser, page: str, policy: str) -> httpx.Response:
    """The page's create form, sent (`post_form` has a `url` of its own)."""
    hidden = parse(admin.client.get(page).text).forms["/console/endpoints"]
    form = {"url": CLOUD, "description": "hello", "traffic_policy": policy}
    return admin.client.post(page, data={**hidden, **form})


def test_a_cloud_endpoint_is_made_changed_and_deleted_on_its_page_as_the_api_decides(
    edge: ConsoleEdge, provider: Provider, admin_key: str, admin: Browser
) -> None:
    page = edge.url + "/console/endpoints"
    empty = admin.client.get(page)
    assert empty.status_code == 200 and 'id="create-endpoint"' in empty.text
    before = audit_types(edge).count("endpoint_created.v0")
    # A policy with an error: the API's diagnostic is shown under its line, nothing is made.
    typo = CLOUD_POLICY.replace("custom-response", "custom-respons")
    bad = create_endpoint(admin, page, typo)
    assert bad.status_code == 400 and "1 error(s)" in shown(bad.text, "error")
    assert re.search(
        r"traffic_policy:4:\d+: on_http_request\[0\]\.actions\[0\]\.type: error: ", bad.text
    )
    assert '<li class="bad">      - type: custom-respons<span class="diag error">' in bad.text
    assert f'value="{CLOUD}"' in bad.text  # the form, as it was sent
    assert audit_types(edge).count("endpoint_created.v0") == before
    assert CLOUD not in admin.client.get(page).text
    # Made: listed, and the edge serves it a moment later.
    made = create_endpoint(admin, page, CLOUD_POLICY)
    assert made.status_code == 201, made.text
    id = _made(made, "ep")
    assert f"serves {CLOUD}" in shown(made.text, "notice") and f'id="endpoint-{id}"' in made.text
    eventually(lambda: public(edge, "made in the console"))
    # Changed with the version the page showed; a second change from that same page is stale.
    update = f"{page}/{id}/update"
    hidden = parse(admin.client.get(page).text).forms[httpx.URL(update).path]
    changed_policy = CLOUD_POLICY.replace("made in the console", "changed in the console")
    changed = admin.client.post(
        update, data={**hidden, "description": "changed", "traffic_policy": changed_policy}
    )
    assert changed.status_code == 200 and f"Endpoint {id} is changed." in changed.text
    eventually(lambda: public(edge, "changed in the console"))
    stale = admin.client.post(
        update, data={**hidden, "description": "stale", "traffic_policy": CLOUD_POLICY}
    )
    assert stale.status_code == 412 and "changed" in shown(stale.text, "error")
    # A change with an error is shown in that endpoint's form, located, and changes nothing.
    broken = post_form(admin, update, page, description="x", traffic_policy=typo)
    assert broken.status_code == 400
    row = re.search(rf'<tr id="endpoint-{id}-change">(.*?)</tr>', broken.text, re.S)
    assert row and '<details class="edit" open>' in row.group(1)
    assert '<span class="diag error">' in row.group(1)
    assert public(edge, "changed in the console")
    try:
        # An auditor reads the page with no forms, and cannot write through it.
        auditor, _ = sign_in(edge, provider, admin_key, "auditor")
        try:
            seen = auditor.client.get(page)
            assert seen.status_code == 200 and f'id="endpoint-{id}"' in seen.text
            assert "<button" not in seen.text.split("</header>")[1]
            csrf = parse(auditor.client.get(edge.url + "/console").text).forms["/logout"]
            refused = auditor.client.post(
                page, data={**csrf, "url": "http://auditor.example.com", "traffic_policy": ""}
            )
            assert refused.status_code == 403 and 'id="error"' in refused.text
            gone = auditor.client.post(f"{page}/{id}/delete", data=csrf)
            assert gone.status_code == 403
        finally:
            auditor.close()
        # A developer does not see the admin's endpoint, nor change or delete it.
        developer, _ = sign_in(edge, provider, admin_key, "developer", GRANT)
        try:
            mine = developer.client.get(page)
            assert mine.status_code == 200 and id not in mine.text
            assert 'id="create-endpoint"' not in mine.text
            csrf = parse(developer.client.get(edge.url + "/console").text).forms["/logout"]
            taken = developer.client.post(
                update, data={**csrf, "description": "mine", "traffic_policy": CLOUD_POLICY}
            )
            assert taken.status_code == 403, taken.text
            assert developer.client.post(f"{page}/{id}/delete", data=csrf).status_code == 403
        finally:
            developer.close()
        assert public(edge, "changed in the console") and "mine" not in admin.client.get(page).text
        # Without the session's CSRF token nothing is deleted.
        forged = admin.client.post(f"{page}/{id}/delete", data={"csrf_token": "x" * 43})
        assert forged.status_code == 403 and f'id="endpoint-{id}"' in admin.client.get(page).text
    finally:
        deleted = post_form(admin, f"{page}/{id}/delete", page)
    assert deleted.status_code == 200 and f"Endpoint {id} is deleted." in deleted.text
    assert f'id="endpoint-{id}"' not in deleted.text
    eventually(lambda: not public(edge, "changed in the console"))


@skip_without_browser
@pytest.mark.slow
def test_in_chromium_an_authtoken_made_in_the_console_binds_an_agent_and_revoking_drops_it(
    edge: ConsoleEdge, provider: Provider, admin_key: str, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from tests.agents.test_agent_http import named_server

    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    kim = person(provider, "kim")
    invitation = edge.sso.invite(admin_key, kim.email, "admin")
    with chromium(SimpleNamespace(spki_sha256="")) as driver:  # type: ignore[arg-type]
        driver.set_window_size(1280, 1000)
        sign_in_chromium(driver, invitation["url"], kim, edge.url + "/console")
        assert f"Signed in as {kim.email} (admin, oidc)" in driver.page_source
        driver.save_screenshot(str(artifacts / "1-home.png"))
        # The stylesheet loaded under the CSP: the header has its dark background.
        header = driver.find_element(By.TAG_NAME, "header")
        assert header.value_of_css_property("background-color") == "rgba(29, 42, 58, 1)"
        driver.find_element(By.LINK_TEXT, "Authtokens").click()
        form = driver.find_element(By.ID, "create-authtoken")
        form.find_element(By.NAME, "description").send_keys("kim's laptop")
        form.find_element(By.NAME, "acl").send_keys("bind:*.apps.example.com")
        form.find_element(By.TAG_NAME, "button").click()
        wait_for(driver, lambda d: d.find_elements(By.ID, "new-token"))
        driver.save_screenshot(str(artifacts / "2-token-shown-once.png"))
        text = driver.find_element(By.ID, "new-token").text
        credential = re.search(r"(at_\w+)", driver.find_element(By.ID, "created").text)
        assert text.startswith("ewt_") and credential
        token = Token(credential.group(1), text)
        with named_server(b"from kim's laptop") as port:
            agent = edge.agents.agent(
                token, "http", str(port), "--url", "http://kim.apps.example.com"
            )
            try:
                url = agent.url
                assert curl(url, edge.agents.web_port).body == b"from kim's laptop"
                driver.find_element(By.LINK_TEXT, "Endpoints").click()
                assert url in driver.find_element(By.ID, "endpoints").text
                driver.find_element(By.LINK_TEXT, "Sessions").click()
                assert token.id in driver.find_element(By.ID, "sessions").text
                driver.save_screenshot(str(artifacts / "3-agent-session.png"))
                driver.find_element(By.LINK_TEXT, "Authtokens").click()
                row = driver.find_element(By.ID, f"authtoken-{token.id}")
                row.find_element(By.TAG_NAME, "button").click()
                wait_for(driver, lambda d: d.find_elements(By.ID, "notice"))
                assert "is revoked" in driver.find_element(By.ID, "notice").text
                driver.save_screenshot(str(artifacts / "4-revoked.png"))
                edge.agents.wait_event("agent_revoked", authtoken=token.id)
                agent.wait_for("refused the authtoken")
                assert agent.proc.wait(TIMEOUT) == 1
                assert curl(url, edge.agents.web_port).status == 404
                driver.find_element(By.LINK_TEXT, "Sessions").click()
                assert token.id not in driver.page_source
            finally:
                agent.kill()
        # The policy editor shows a located error under its line.
        driver.find_element(By.LINK_TEXT, "Policy editor").click()
        area = driver.find_element(By.NAME, "policy")
        area.clear()
        area.send_keys(BAD_POLICY)
        driver.find_element(By.ID, "check").click()
        wait_for(driver, lambda d: d.find_elements(By.ID, "source"))
        bad = driver.find_element(By.CSS_SELECTOR, "#source li.bad")
        assert "type: dney" in bad.text and "^ error:" in bad.text
        driver.save_screenshot(str(artifacts / "5-policy-error.png"))
        # A form whose CSRF token was taken out is refused, and nothing is made.
        driver.find_element(By.LINK_TEXT, "Authtokens").click()
        driver.execute_script(
            "document.querySelector('#create-authtoken input[name=csrf_token]').remove()"
        )
        form = driver.find_element(By.ID, "create-authtoken")
        form.find_element(By.NAME, "description").send_keys("forged")
        form.find_element(By.TAG_NAME, "button").click()
        wait_for(driver, lambda d: d.title.startswith("Refused"))
        assert "without this session's CSRF token" in driver.page_source
        driver.save_screenshot(str(artifacts / "6-csrf-refused.png"))
        driver.find_element(By.LINK_TEXT, "Authtokens").click()
        assert "forged" not in driver.find_element(By.TAG_NAME, "main").text
        # Signed out, a developer signs in: it sees only its own things.
        driver.find_element(By.ID, "sign-out").click()
        wait_for(driver, lambda d: "Signed out" in d.page_source)
        clear_cookies(driver)
        lee = person(provider, "lee")
        invitation = edge.sso.invite(admin_key, lee.email, "developer", GRANT)
        sign_in_chromium(driver, invitation["url"], lee, edge.url + "/console")
        assert f"Signed in as {lee.email} (developer, oidc)" in driver.page_source
        driver.find_element(By.LINK_TEXT, "Authtokens").click()
        assert token.id not in driver.page_source and "No authtokens yet." in driver.page_source
        driver.find_element(By.LINK_TEXT, "Endpoints").click()
        assert "cfg_site" not in driver.page_source
        driver.find_element(By.LINK_TEXT, "Users").click()
        assert lee.email in driver.page_source and kim.email not in driver.page_source
        driver.save_screenshot(str(artifacts / "7-developer-users.png"))
        driver.find_element(By.LINK_TEXT, "Audit log").click()
        assert "Only admins and auditors read the audit log." in driver.page_source
    assert all((artifacts / n).stat().st_size > 0 for n in os.listdir(artifacts))


def test_stopping_a_session_in_the_console_disconnects_its_agent(
    edge: ConsoleEdge, admin_key: str, admin: Browser
) -> None:
    from tests.agents.test_agent_http import named_server

    page = edge.url + "/console/authtokens"
    made = post_form(admin, page, page, description="stop me", acl="bind:*.apps.example.com")
    assert made.status_code == 201, made.text
    token = re.search(r"<code>(at_\w+)</code> is made", made.text)
    assert token
    with named_server(b"s") as port:
        agent = edge.agents.agent(
            Token(token.group(1), shown(made.text, "new-token")),
            "http", str(port), "--url", "http://stop.apps.example.com",
        )  # fmt: skip
        try:
            agent.url  # noqa: B018
            listing = admin.client.get(edge.url + "/console/sessions").text
            row = rf'<tr id="session-(ses_\w+)">(?:(?!</tr>).)*<code>{token.group(1)}</code>'
            found = re.search(row, listing, re.DOTALL)
            assert found, listing
            session = found.group(1)
            stop = f"{edge.url}/console/sessions/{session}/stop"
            stopped = post_form(admin, stop, edge.url + "/console/sessions")
            assert stopped.status_code == 200 and f"Session {session} is stopped." in stopped.text
            edge.agents.wait_event(
                "agent_disconnected", session=session, reason="stopped through the admin API"
            )
            # Stopped already: the API's 404, shown on the page (the token from the layout's form).
            csrf = parse(admin.client.get(edge.url + "/console").text).forms["/logout"]
            again = admin.client.post(stop, data=csrf)
            assert again.status_code == 404 and 'id="error"' in again.text
        finally:
            agent.kill()


def eventually(probe: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    """`probe()` once it is truthy (what the edge does a moment later)."""
    deadline = time.monotonic() + timeout
    while not (found := probe()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert found, "timed out"
    return found


def _made(response: Any, kind: str) -> str:
    """The id in the page's notice of what was made."""
    found = re.search(rf"\b({kind}_\w+)\b", shown(response.text, "notice"))
    assert found, response.text
    return found.group(1)


def test_ip_policies_rules_and_restrictions_are_made_on_their_page_as_the_api_decides(
    edge: ConsoleEdge, provider: Provider, admin_key: str, admin: Browser
) -> None:
    page = edge.url + "/console/ip-policies"
    empty = admin.client.get(page)
    assert empty.status_code == 200 and 'id="ip-restrictions"' not in empty.text
    office = _made(post_form(admin, page, page, description="office"), "ipp")
    other = _made(post_form(admin, page, page, description="elsewhere"), "ipp")
    rules = f"{page}/{office}/rules"
    # The action is the rule's (as in the API), and the API's refusals are shown with their status.
    bare = post_form(admin, rules, page, cidr="127.0.0.1/32", description="me")
    assert bare.status_code == 400 and "action must be allow or deny" in shown(bare.text, "error")
    wide = post_form(admin, rules, page, cidr="10.0.0.1/8", action="deny")
    assert wide.status_code == 400 and "did you mean '10.0.0.0/8'" in shown(wide.text, "error")
    mine = post_form(admin, rules, page, cidr="127.0.0.1/32", action="allow", description="me")
    assert mine.status_code == 201 and "allow 127.0.0.1/32" in shown(mine.text, "notice")
    mine_id = _made(mine, "ipr")
    post_form(admin, f"{page}/{other}/rules", page, cidr="127.0.0.2/32", action="allow")
    restrictions = edge.url + "/console/ip-restrictions"
    try:
        # Attaching only `elsewhere` to the API would shut this browser out: the lockout guard.
        locked = post_form(admin, restrictions, page, type="api", ip_policy_id=other, enforced="on")
        assert locked.status_code == 409, locked.text
        assert "would deny your own address 127.0.0.1" in shown(locked.text, "error")
        assert 'id="ip-restrictions"' not in locked.text
        made = post_form(admin, restrictions, page, type="api", ip_policy_id=office, enforced="on")
        assert made.status_code == 201, made.text
        restriction = _made(made, "ipx")
        # The second policy joins the restriction of that type (no second restriction).
        joined = post_form(admin, restrictions, page, type="api", ip_policy_id=other)
        assert joined.status_code == 200 and "(not enforced)" in shown(joined.text, "notice")
        row = re.search(rf'<tr id="ip-restriction-{restriction}">(.*?)</tr>', joined.text, re.S)
        assert row and office in row.group(1) and other in row.group(1)
        assert "no (logged only)" in row.group(1) and joined.text.count('id="ip-restriction-') == 1
        # A policy in use is not deleted; the API says why.
        in_use = post_form(admin, f"{page}/{office}/delete", page)
        assert in_use.status_code == 409 and "detach it first" in shown(in_use.text, "error")
        # An auditor reads the page, with no forms, and cannot write through it.
        auditor, _ = sign_in(edge, provider, admin_key, "auditor")
        try:
            seen = auditor.client.get(page)
            assert seen.status_code == 200 and office in seen.text and "127.0.0.2/32" in seen.text
            assert 'id="ip-policies"' in seen.text and 'id="ip-restrictions"' in seen.text
            assert "<button" not in seen.text.split("</header>")[1]
            csrf = parse(auditor.client.get(edge.url + "/console").text).forms["/logout"]
            refused = auditor.client.post(f"{page}/{office}/delete", data=csrf)
            assert refused.status_code == 403 and 'id="error"' in refused.text
        finally:
            auditor.close()
        detached = post_form(
            admin, f"{restrictions}/{restriction}/detach", page, ip_policy_id=other
        )
        assert detached.status_code == 200, detached.text
        assert other not in re.findall(r'id="ip-restriction-.*?</tr>', detached.text, re.S)[0]
        # Enforced again (attaching a policy already there changes only that), removing
        # one's own allow rule is refused too.
        again = post_form(admin, restrictions, page, type="api", ip_policy_id=office, enforced="on")
        assert again.status_code == 200 and "(enforced)" in shown(again.text, "notice")
        own = post_form(admin, f"{edge.url}/console/ip-policy-rules/{mine_id}/delete", page)
        assert own.status_code == 409 and "127.0.0.1" in shown(own.text, "error")
        gone = post_form(admin, f"{restrictions}/{restriction}/delete", page)
        assert gone.status_code == 200 and 'id="ip-restrictions"' not in gone.text
        deleted = post_form(admin, f"{edge.url}/console/ip-policy-rules/{mine_id}/delete", page)
        assert deleted.status_code == 200 and f"ip-policy-rule-{mine_id}" not in deleted.text
        # Without the session's CSRF token nothing is deleted.
        forged = admin.client.post(f"{page}/{office}/delete", data={"csrf_token": "x" * 43})
        assert forged.status_code == 403 and office in admin.client.get(page).text
        for id in (office, other):
            assert post_form(admin, f"{page}/{id}/delete", page).status_code == 200
        assert office not in admin.client.get(page).text
    finally:  # never leave a restriction behind for the module's other tests
        with httpx.Client(
            base_url=edge.url,
            headers={"Ngrok-Version": "2", "Authorization": f"Bearer {admin_key}"},
        ) as api:
            for left in api.get("/ip_restrictions").json()["ip_restrictions"]:
                api.delete(f"/ip_restrictions/{left['id']}", params={"force": "true"})


@skip_without_browser
@pytest.mark.slow
def test_in_chromium_a_dashboard_rule_locks_out_a_denied_address_but_not_the_admins_own(
    edge: ConsoleEdge, provider: Provider, admin_key: str, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    from tests.admin.test_control import from_127_0_0_2

    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    ivy = person(provider, "ivy")
    invitation = edge.sso.invite(admin_key, ivy.email, "admin")
    page = edge.url + "/console/ip-policies"

    def from_denied(path: str) -> httpx.Response:
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(transport=transport, timeout=30) as client:
            return client.get(edge.url + path)

    def add_rule(driver: Any, policy: str, action: str, cidr: str) -> str:
        form = driver.find_element(By.CSS_SELECTOR, f"#ip-policy-{policy} form.add-rule")
        Select(form.find_element(By.NAME, "action")).select_by_value(action)
        form.find_element(By.NAME, "cidr").send_keys(cidr)
        form.find_element(By.NAME, "description").send_keys(f"{action} {cidr}")
        form.find_element(By.TAG_NAME, "button").click()
        wait_for(driver, lambda d: d.find_elements(By.ID, "notice"))
        found = re.search(r"Rule (ipr_\w+):", driver.find_element(By.ID, "notice").text)
        assert found, driver.page_source
        return found.group(1)

    def attach(driver: Any, policy: str) -> None:
        form = driver.find_element(By.ID, "attach-ip-policy")
        Select(form.find_element(By.NAME, "type")).select_by_value("dashboard")
        Select(form.find_element(By.NAME, "ip_policy_id")).select_by_value(policy)
        assert form.find_element(By.NAME, "enforced").is_selected()
        form.find_element(By.TAG_NAME, "button").click()
        wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#notice, #error"))

    with (
        from_127_0_0_2(edge.sso.port) as relay,
        chromium(SimpleNamespace(spki_sha256="")) as driver,  # type: ignore[arg-type]
    ):
        denied_url = f"http://127.0.0.1:{relay}/console/ip-policies"
        driver.set_window_size(1280, 1000)
        sign_in_chromium(driver, invitation["url"], ivy, edge.url + "/console")
        # Open to every address at first: the session works from 127.0.0.2 (through the relay).
        driver.get(denied_url)
        assert f"Signed in as {ivy.email} (admin, oidc)" in driver.page_source
        assert from_denied("/login").status_code == 200
        driver.get(edge.url + "/console")
        driver.find_element(By.LINK_TEXT, "IP policies").click()
        form = driver.find_element(By.ID, "create-ip-policy")
        form.find_element(By.NAME, "description").send_keys("admins' desks")
        form.find_element(By.TAG_NAME, "button").click()
        wait_for(driver, lambda d: d.find_elements(By.ID, "notice"))
        policy = re.search(r"(ipp_\w+)", driver.find_element(By.ID, "notice").text)
        assert policy
        desks = policy.group(1)
        try:
            add_rule(driver, desks, "deny", "127.0.0.2/32")
            # A deny rule alone denies every address, this admin's too: the guard refuses.
            attach(driver, desks)
            error = driver.find_element(By.ID, "error").text
            assert "would deny your own address 127.0.0.1 access to the dashboard" in error
            assert not driver.find_elements(By.ID, "ip-restrictions")
            driver.save_screenshot(str(artifacts / "1-lockout-refused.png"))
            lan = add_rule(driver, desks, "allow", "127.0.0.0/8")
            attach(driver, desks)
            notice = driver.find_element(By.ID, "notice").text
            made = re.search(r"IP restriction (ipx_\w+) \(dashboard\) is created", notice)
            assert made, driver.page_source
            row = driver.find_element(By.ID, "ip-restrictions").text
            assert "dashboard" in row and desks in row
            driver.save_screenshot(str(artifacts / "2-dashboard-restricted.png"))
            # The same browser, from 127.0.0.2: the refusal page, its session notwithstanding.
            wait_for(
                driver,
                lambda d: d.get(denied_url) or "Not allowed" in d.title,
                timeout=TIMEOUT,
            )
            text = driver.find_element(By.TAG_NAME, "body").text
            assert "Your address 127.0.0.2 is not allowed to use the edgeward console" in text
            assert desks not in driver.page_source and "ipx_" not in driver.page_source
            driver.save_screenshot(str(artifacts / "3-denied-address.png"))
            for path in ("/console", "/login", "/console/ip-policies"):
                refused = from_denied(path)
                assert refused.status_code == 403 and "127.0.0.2" in refused.text, path
            # The admin's own address keeps working, and its last way in cannot be removed.
            driver.get(page)
            assert driver.find_element(By.ID, "ip-restrictions")
            row = driver.find_element(By.ID, f"ip-policy-rule-{lan}")
            row.find_element(By.TAG_NAME, "button").click()
            wait_for(driver, lambda d: d.find_elements(By.ID, "error"))
            assert "your own address 127.0.0.1" in driver.find_element(By.ID, "error").text
            assert driver.find_elements(By.ID, f"ip-policy-rule-{lan}")
            driver.save_screenshot(str(artifacts / "4-own-rule-kept.png"))
            # The restriction deleted, 127.0.0.2 comes back.
            delete = f"#ip-restriction-{made.group(1)} form[action$='/delete'] button"
            driver.find_element(By.CSS_SELECTOR, delete).click()
            wait_for(driver, lambda d: "is deleted" in d.find_element(By.ID, "notice").text)
            wait_for(
                driver,
                lambda d: d.get(denied_url) or "IP policies" in d.title,
                timeout=TIMEOUT,
            )
        finally:
            with httpx.Client(
                base_url=edge.url,
                headers={"Ngrok-Version": "2", "Authorization": f"Bearer {admin_key}"},
            ) as api:
                for left in api.get("/ip_restrictions").json()["ip_restrictions"]:
                    api.delete(f"/ip_restrictions/{left['id']}", params={"force": "true"})
                api.delete(f"/ip_policies/{desks}")
    assert all((artifacts / n).stat().st_size > 0 for n in os.listdir(artifacts))
    assert len(os.listdir(artifacts)) == 4


def test_an_http_destination_made_in_the_console_gets_what_its_subscription_picks(
    edge: ConsoleEdge, provider: Provider, admin_key: str, admin: Browser
) -> None:
    from tests.events.receivers import http_receiver

    page = edge.url + "/console/event-destinations"
    subscriptions = edge.url + "/console/event-subscriptions"
    ips = edge.url + "/console/ip-policies"
    with http_receiver() as receiver:

        def new_destination(fields: dict[str, str]) -> httpx.Response:
            hidden = parse(admin.client.get(page).text).forms["/console/event-destinations"]
            return admin.client.post(page, data={**hidden, **fields})

        ftp = new_destination({"kind": "http", "url": "ftp://siem.example.com"})
        assert ftp.status_code == 400
        assert "target.http.url: must be an http:// or https:// URL" in shown(ftp.text, "error")
        made = new_destination({
            "kind": "http", "description": "siem", "url": receiver.url, "shape": "json",
            "token": "s3cret-collector-token", "format": "json",
        })  # fmt: skip
        assert made.status_code == 201, made.text
        destination = _made(made, "ed")
        assert "s3cret-collector-token" not in made.text and "token: <code>********" in made.text
        # A CEL error is the API's, placed under its line and column; the form keeps what was typed.
        wrong = 'object.description.startsWith("to-siem") &&\n  principal.role = "admin"'
        refused = post_form(
            admin, subscriptions, page, destination_id=destination,
            sources="ip_policy_created.v0", filter=wrong,
        )  # fmt: skip
        assert refused.status_code == 400, refused.text
        message = shown(refused.text, "error")
        assert re.match(r"filter: 2:\d+: ", message), message
        assert re.search(r'<li class="bad">  principal\.role = (&#34;|&quot;)admin', refused.text)
        assert (
            '<span class="diag error">' in refused.text
            and "startsWith(&#34;to-siem" in (refused.text.split('name="filter"')[1])
        )
        subscribed = post_form(
            admin, subscriptions, page, destination_id=destination, description="ip changes",
            sources="ip_policy_created.v0, ip_policy_deleted.v0",
            filter='object.description.startsWith("to-siem")',
        )  # fmt: skip
        assert subscribed.status_code == 201, subscribed.text
        subscription = _made(subscribed, "esb")
        row = re.search(
            rf'<tr id="event-subscription-{subscription}">(.*?)</tr>', subscribed.text, re.S
        )
        assert row and "ip_policy_deleted.v0" in row.group(1) and destination in row.group(1)
        # The edge applies it within a second: admin changes in the console reach the collector.
        made_ids: list[str] = []
        try:
            deadline = time.monotonic() + 30
            while not receiver.events() and time.monotonic() < deadline:
                made_ids.append(
                    _made(post_form(admin, ips, ips, description="to-siem probe"), "ipp")
                )
                time.sleep(0.3)
            quiet = _made(post_form(admin, ips, ips, description="quiet"), "ipp")
            loud = _made(post_form(admin, ips, ips, description="to-siem loud"), "ipp")
            made_ids += [quiet, loud]
            event = eventually(
                lambda: [e for e in receiver.events() if e["object"].get("id") == loud]
            )[0]
            assert event["event_type"] == "ip_policy_created.v0"
            assert event["principal"]["role"] == "admin"
            assert all(e["object"].get("id") != quiet for e in receiver.events())
            # An auditor reads the page without its forms; a developer is refused, as by the API.
            auditor, _ = sign_in(edge, provider, admin_key, "auditor")
            developer, _ = sign_in(edge, provider, admin_key, "developer", GRANT)
            try:
                seen = auditor.client.get(page)
                assert seen.status_code == 200 and subscription in seen.text
                assert "<form" not in seen.text.split("</header>")[1]
                assert "s3cret" not in seen.text
                mine = developer.client.get(page)
                assert mine.status_code == 403 and "for admins and auditors" in mine.text
            finally:
                auditor.close()
                developer.close()
            gone = post_form(admin, f"{subscriptions}/{subscription}/delete", page)
            assert gone.status_code == 200 and f"event-subscription-{subscription}" not in gone.text
        finally:
            for id in made_ids:
                post_form(admin, f"{ips}/{id}/delete", ips)
        deleted = post_form(admin, f"{page}/{destination}/delete", page)
        assert deleted.status_code == 200 and f"event-destination-{destination}" not in deleted.text
        csrf = parse(admin.client.get(edge.url + "/console").text).forms["/logout"]
        again = admin.client.post(f"{page}/{destination}/delete", data=csrf)
        assert again.status_code == 404 and destination in shown(again.text, "error")
