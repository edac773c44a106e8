"""openid-connect end to end: `edgeward serve` in front of an upstream,
Canaille as the OpenID Provider, a scripted browser (httpx + cookie jar)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.identity.op import Provider
from tests.identity.support import Browser, Certs, pick_port, start_identity_edge
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
"""


def test_login_round_trip_forwards_the_identity(
    provider: Provider, certs: Certs, upstream: Server, workdir: Path
) -> None:
    port = pick_port()
    client_id, secret = provider.client(f"https://auth.edge.test:{port}/oauth2/callback")
    policy = POLICY.format(issuer=provider.issuer, client_id=client_id, secret=secret)
    edge = start_identity_edge(workdir, certs, port, {"app": policy}, upstream.url)
    browser = Browser(certs)
    try:
        response = browser.follow(edge.url("app", "/private/page?x=1"), login=("alice", "alice-password-1"))
        assert response.status_code == 200, (response.status_code, response.text, edge.log())
        seen = json.loads(response.text)
        assert seen["path"] == "/private/page?x=1"
        assert seen["headers"]["x-user-email"] == "alice@example.com"
        assert "session" not in seen["headers"].get("cookie", "")
    finally:
        browser.close()
        edge.stop()
