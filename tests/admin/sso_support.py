"""Helpers of the SSO tests: `edgeward serve` with `api.sso` (a real
process), and a scripted browser (httpx with a cookie jar, following
redirects itself, filling the OpenID Provider's login forms and
submitting a SAML IdP's auto-post form, as a browser would)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
from tests.agents.agents_support import run_cli
from tests.proxy.proxy_support import Edge, free_port, start_edge

EDGE = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints:
  - name: site
    hostname: site.example.com
    upstream: http://127.0.0.1:9
    listeners: [web]
state_dir: {dir}/state
api:
  address: 127.0.0.1:{port_api}
  audit_log: {dir}/audit.log
{tls}
  sso:
    public_url: {scheme}://127.0.0.1:{port_api}
{sso}
"""


@dataclass
class SsoEdge:
    edge: Edge
    directory: Path
    port: int
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def audit(self, event_type: str | None = None) -> list[dict[str, Any]]:
        path = self.directory / "audit.log"
        if not path.exists():
            return []
        events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [e for e in events if event_type is None or e["event_type"] == event_type]

    def until(self, check: Callable[[], Any], what: str = "audit events") -> Any:
        """Poll `check` (which reads the audit log) until it is truthy: the
        audit is written by a thread, a moment after the answer."""
        deadline = time.monotonic() + 15
        while not (found := check()):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.05)
        return found

    def admin_key(self) -> str:
        out = run_cli(
            "api-key", "create", "--state-dir", str(self.directory / "state"),
            "--role", "admin", "--json",
        )  # fmt: skip
        return str(json.loads(out)["token"])

    def api(self, key: str) -> httpx.Client:
        headers = {"Ngrok-Version": "2", "Authorization": f"Bearer {key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def invite(self, key: str, email: str, role: str, *acl: str) -> dict[str, Any]:
        with self.api(key) as client:
            body: dict[str, Any] = {"email": email, "role": role}
            if acl:
                body["acl"] = list(acl)
            answer = client.post("/invitations", json=body)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def log(self) -> str:
        return self.edge.log.read_text()


@contextmanager
def sso_edge(
    directory: Path, sso: str, port: int | None = None, *, tls: tuple[Path, Path] | None = None
) -> Iterator[SsoEdge]:
    """`sso`: the lines under `api.sso` after public_url (indented 4);
    `tls`: the API's certificate and key (https), else http."""
    port = port or free_port()
    tls_lines = (
        f"  tls:\n    certificates: [{{cert: {tls[0]}, key: {tls[1]}}}]" if tls is not None else ""
    )
    scheme = "https" if tls is not None else "http"
    edge = start_edge(
        directory, EDGE, listeners=["web"], port_api=port, sso=sso, tls=tls_lines, scheme=scheme
    )
    from tests.proxy.proxy_support import wait_port

    try:
        wait_port(port, proc=edge.proc)
    except Exception:
        edge.stop()
        raise RuntimeError(f"edge did not start:\n{edge.log.read_text()}") from None
    try:
        yield SsoEdge(edge, directory, port, scheme)
    finally:
        edge.stop()


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.inputs: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = a.get("action") or ""
        if tag == "input" and a.get("name") and a.get("type") in ("hidden", None, "text"):
            self.inputs[str(a["name"])] = a.get("value") or ""


def forms(html: str) -> _Forms:
    parsed = _Forms()
    parsed.feed(html)
    return parsed


class Browser:
    """httpx with a cookie jar, following redirects itself (a test can stop
    at any hop), filling the OP's forms and posting SAML auto-post forms."""

    def __init__(self, verify: Any = True) -> None:
        self.client = httpx.Client(timeout=30, verify=verify)
        self.hops: list[httpx.Response] = []

    def close(self) -> None:
        self.client.close()

    def follow(
        self,
        url: str,
        *,
        login: tuple[str, str] | None = None,
        otp: Callable[[], str] | None = None,
        stop: re.Pattern[str] | None = None,
        post_saml: bool = True,
        max_hops: int = 20,
    ) -> httpx.Response:
        response = self.client.get(url)
        for _ in range(max_hops):
            self.hops.append(response)
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if stop is not None and stop.search(location):
                    return response
                response = self.client.get(location)
                continue
            if response.status_code != 200:
                return response
            text = response.text
            form = forms(text)
            if post_saml and "SAMLResponse" in form.inputs:
                target = urljoin(str(response.url), form.action or "")
                if stop is not None and stop.search(target):
                    return response
                response = self.client.post(target, data=form.inputs)
                continue
            if login is not None and 'name="login"' in text:
                response = self.client.post(
                    str(response.url), data={**form.inputs, "login": login[0]}
                )
                continue
            if login is not None and 'name="password"' in text:
                data = {**form.inputs, "password": login[1]}
                response = self.client.post(str(response.url), data=data)
                continue
            if otp is not None and 'name="otp"' in text:
                response = self.client.post(str(response.url), data={**form.inputs, "otp": otp()})
                continue
            return response
        raise AssertionError(f"too many redirects from {url}")


__all__ = ["Browser", "SsoEdge", "forms", "sso_edge"]
