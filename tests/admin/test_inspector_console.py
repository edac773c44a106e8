"""The console's traffic inspector against `edgeward serve` as a process:
an admin signed in with OIDC + TOTP (Canaille) in Debian's headless
chromium turns inspection on for edge.yml's endpoint, sees a request the
policy denied (the deny rule named), opens it (credentials and a vault
secret redacted in the HTML), replays it; screenshots in artifacts/. httpx
as the browser checks the role rule: an auditor reads and cannot toggle."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from tests.admin.console_support import ConsoleEdge, console_edge, parse, sign_in_chromium
from tests.admin.test_console import sign_in
from tests.agents.agents_support import Pki
from tests.identity.browser import chromium, skip_without_browser, wait_for
from tests.identity.op import Provider, running_provider

SECRET = "console-vault-secret-81d2"
BEARER = "bearer-shown-nowhere-4417"


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with running_provider(otp=True) as op:
        yield op


@pytest.fixture(scope="module")
def edge(
    provider: Provider, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConsoleEdge]:
    with console_edge(tmp_path_factory.mktemp("inspector-console"), pki, provider) as running:
        yield running


@pytest.fixture(scope="module")
def admin_key(edge: ConsoleEdge) -> str:
    key = edge.sso.admin_key()
    with edge.sso.api(key) as api:
        vault = api.post("/vaults", json={"name": "console"}).json()
        made = api.post("/secrets", json={"vault_id": vault["id"], "name": "s", "value": SECRET})
        assert made.status_code == 201, made.text
    return key


def send(edge: ConsoleEdge, path: str) -> int:
    """A request to edge.yml's endpoint `site` (the policy denies /admin...)."""
    with httpx.Client(base_url=f"http://127.0.0.1:{edge.agents.web_port}", timeout=30) as client:
        return client.post(
            path,
            content=json.dumps({"note": f"signed {SECRET}"}),
            headers={"host": "site.example.com", "authorization": f"Bearer {BEARER}"},
        ).status_code


@skip_without_browser
@pytest.mark.slow
def test_in_chromium_an_admin_inspects_sees_the_deny_and_replays(
    edge: ConsoleEdge, provider: Provider, admin_key: str, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from tests.admin.test_sso import person

    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    ana = person(provider, "ana")
    invitation = edge.sso.invite(admin_key, ana.email, "admin")
    with chromium(SimpleNamespace(spki_sha256="")) as driver:  # type: ignore[arg-type]
        driver.set_window_size(1280, 1000)
        sign_in_chromium(driver, invitation["url"], ana, edge.url + "/console")
        # From the endpoints page to the endpoint's inspector: off, nothing captured.
        driver.find_element(By.LINK_TEXT, "Endpoints").click()
        row = driver.find_element(By.ID, "endpoint-cfg_site")
        row.find_element(By.CLASS_NAME, "inspect").click()
        wait_for(driver, lambda d: d.find_elements(By.ID, "state"))
        assert "Inspection is off" in driver.find_element(By.ID, "state").text
        assert send(edge, "/admin/before") == 403
        driver.find_element(By.CSS_SELECTOR, "#toggle button").click()
        wait_for(driver, lambda d: d.find_elements(By.ID, "notice"))
        assert "Inspection is on" in driver.find_element(By.ID, "state").text
        # A request the policy denies shows up, with the rule that decided.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert send(edge, "/admin/panel?token=q-secret") == 403
            driver.refresh()
            if driver.find_elements(By.ID, "captures"):
                break
            time.sleep(0.2)
        table = driver.find_element(By.ID, "captures").text
        assert "POST /admin/panel?token=[REDACTED]" in table and "no admin" in table
        assert "/admin/before" not in table
        driver.save_screenshot(str(artifacts / "1-captures.png"))
        # Its detail: heads, body, trace; the credentials are not in the page.
        driver.find_element(By.CSS_SELECTOR, "#captures tr:nth-child(2) a").click()
        wait_for(driver, lambda d: d.find_elements(By.ID, "trace"))
        html = driver.page_source
        for secret in (BEARER, SECRET, "q-secret"):
            assert secret not in html, secret
        assert "Bearer [REDACTED]" in driver.find_element(By.ID, "request-headers").text
        assert "answered 403" in driver.find_element(By.CSS_SELECTOR, "#trace tr.decided").text
        driver.save_screenshot(str(artifacts / "2-capture.png"))
        # Replay: the edge sends it again; the page is the replay's capture.
        original = driver.current_url.rsplit("/", 1)[1]
        driver.find_element(By.CSS_SELECTOR, "#replay button").click()
        wait_for(driver, lambda d: d.find_elements(By.ID, "notice"))
        assert f"Replayed {original}" in driver.find_element(By.ID, "notice").text
        assert f"a replay of {original}" in driver.find_element(By.ID, "summary").text
        assert driver.find_element(By.ID, "status").text == "403"
        driver.save_screenshot(str(artifacts / "3-replayed.png"))
    assert all((artifacts / n).stat().st_size > 0 for n in os.listdir(artifacts))
    types = [e["event_type"] for e in edge.sso.audit()]
    assert "endpoint_inspection_updated.v0" in types
    assert "endpoint_capture_replayed.v0" in types


def test_an_auditor_reads_the_inspector_and_cannot_toggle_it(
    edge: ConsoleEdge, provider: Provider, admin_key: str
) -> None:
    browser, _ = sign_in(edge, provider, admin_key, "auditor")
    with edge.sso.api(admin_key) as api:
        before = api.get("/endpoints/cfg_site").json()["inspect"]
    try:
        page = f"{edge.url}/console/endpoints/cfg_site/inspect"
        shown = browser.client.get(page)
        assert shown.status_code == 200 and 'id="state"' in shown.text
        assert 'id="toggle"' not in shown.text  # no form for a reader
        csrf = parse(shown.text).forms["/logout"]["csrf_token"]  # the session's own token
        refused = browser.client.post(page, data={"csrf_token": csrf, "enabled": "true"})
        assert refused.status_code == 403 and "reads only" in refused.text
        with edge.sso.api(admin_key) as api:
            assert api.get("/endpoints/cfg_site").json()["inspect"] == before
    finally:
        browser.close()


def test_a_developer_cannot_open_edge_yml_endpoints_inspector(
    edge: ConsoleEdge, provider: Provider, admin_key: str
) -> None:
    browser, _ = sign_in(edge, provider, admin_key, "developer", "bind:*.apps.example.com")
    try:
        page = f"{edge.url}/console/endpoints/cfg_site/inspect"
        assert browser.client.get(page).status_code == 404
    finally:
        browser.close()
