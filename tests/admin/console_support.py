"""Helpers of the console tests: `edgeward serve` with `api.sso` (OIDC to
Canaille with TOTP) and an agent ingress, people signed in through the
real OIDC+MFA flow (httpx as the browser, or Debian's chromium), and the
console's forms read as a browser reads them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
from tests.admin.sso_support import Browser, SsoEdge
from tests.admin.test_sso import PASSWORD_OF, Person
from tests.agents.agents_support import AgentEdge, Pki, ingress_block
from tests.proxy.proxy_support import free_port, start_edge, wait_port

EDGE = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints:
  - name: site
    hostname: site.example.com
    upstream: http://127.0.0.1:9
    listeners: [web]
    traffic_policy:
      on_http_request:
        - name: no admin
          expressions: ["req.url.path.startsWith('/admin')"]
          actions: [{{type: deny}}]
state_dir: {dir}/state
events: {dir}/events.log
access_log: {dir}/access.log
api:
  address: 127.0.0.1:{port_api}
  audit_log: {dir}/audit.log
  sso:
    public_url: http://127.0.0.1:{port_api}
    oidc:
      issuer_url: {issuer}
      client_id: {client_id}
      client_secret: {secret}
      allow_insecure_loopback_issuer: true
    login_rate: {{attempts: 1000, per_seconds: 60}}
"""


@dataclass
class ConsoleEdge:
    sso: SsoEdge
    agents: AgentEdge

    @property
    def url(self) -> str:
        return self.sso.url


@contextmanager
def console_edge(
    directory: Path, pki: Pki, provider: object, api_extra: str = ""
) -> Iterator[ConsoleEdge]:
    """`api_extra`: more lines of the `api:` section (indented 2, no braces),
    e.g. its `events:` destinations."""
    port = free_port()
    client_id, secret = provider.client(f"http://127.0.0.1:{port}/login/oidc/callback")  # type: ignore[attr-defined]
    body = EDGE + api_extra + ingress_block(pki, domains=["*.apps.example.com"])
    edge = start_edge(
        directory, body, listeners=["web", "ingress"], port_api=port,
        issuer=provider.issuer, client_id=client_id, secret=secret,  # type: ignore[attr-defined]
    )  # fmt: skip
    try:
        wait_port(port, proc=edge.proc)
    except Exception:
        edge.stop()
        raise RuntimeError(f"edge did not start:\n{edge.log.read_text()}") from None
    try:
        yield ConsoleEdge(SsoEdge(edge, directory, port), AgentEdge(edge, directory, pki))
    finally:
        edge.stop()


class _Page(HTMLParser):
    """The forms of a page: action -> its hidden inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, dict[str, str]] = {}
        self._action: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self._action = a.get("action") or ""
            self.forms.setdefault(self._action, {})
        if tag == "input" and self._action is not None and a.get("type") == "hidden":
            self.forms[self._action][str(a.get("name"))] = a.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._action = None


def shown(html: str, id: str) -> str:
    """The text of the element with `id` (no nested tags)."""
    import re
    from html import unescape

    found = re.search(rf'id="{re.escape(id)}"[^>]*>([^<]*)<', html)
    assert found, f"no #{id} in the page"
    return unescape(found.group(1))


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def post_form(browser: Browser, url: str, page_url: str, **fields: str) -> httpx.Response:
    """Post the form whose action is `url`'s path, as found on `page_url`
    (its hidden CSRF token included), with `fields`."""
    page = browser.client.get(page_url)
    assert page.status_code == 200, page.text
    path = httpx.URL(url).path
    hidden = parse(page.text).forms[path]
    return browser.client.post(url, data={**hidden, **fields})


def audit_types(edge: ConsoleEdge) -> list[str]:
    path = edge.sso.directory / "audit.log"
    return [json.loads(line)["event_type"] for line in path.read_text().splitlines() if line]


BROWSER_TIMEOUT = 60.0  # seconds: a loaded 2-core machine, with chromium and the edge on it


def sign_in_chromium(driver: Any, invitation_url: str, who: Person, console: str) -> None:
    """Follow an invitation link in chromium and sign in with OpenID
    Connect: the OP's login and password pages, then its TOTP page."""
    from selenium.webdriver.common.by import By
    from tests.identity.browser import log_in, wait_for

    driver.get(invitation_url)
    wait_for(driver, lambda d: "You are invited" in d.page_source, BROWSER_TIMEOUT)
    driver.find_element(By.ID, "oidc").click()
    log_in(driver, who.login, PASSWORD_OF)
    wait_for(driver, lambda d: d.find_elements(By.NAME, "otp"), BROWSER_TIMEOUT)
    field = driver.find_element(By.NAME, "otp")
    field.send_keys(who.otp())
    field.submit()
    wait_for(driver, lambda d: d.current_url == console, BROWSER_TIMEOUT)


__all__ = [
    "BROWSER_TIMEOUT",
    "ConsoleEdge",
    "audit_types",
    "console_edge",
    "parse",
    "post_form",
    "shown",
    "sign_in_chromium",
]
