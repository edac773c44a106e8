"""`oauth` end to end with a local server speaking GitHub's API shape: the
brief's social example (GitHub, then an email rule), the user's orgs as a
claim, and the load errors of a self-hosted edge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.identity.fake_github import FakeGitHub, running_github
from tests.identity.support import (
    Browser,
    Certs,
    IdentityEdge,
    pick_port,
    start_identity_edge,
    write_keys,
)
from tests.policy.e2e import Server

from edgeward.config import load_config
from edgeward.errors import ConfigError
from edgeward.policy import compile_hooks

# The brief's example, with the client the operator registered.
BRIEF = """
on_http_request:
  - actions:
      - type: oauth
        config:
          provider: github
          client_id: {client_id}
          client_secret: {secret}
  - expressions:
      - "!(actions.ngrok.oauth.identity.email.endsWith('@example.com'))"
      - "!(actions.ngrok.oauth.identity.email == 'john@external.com')"
    actions:
      - type: deny
  - actions:
      - type: add-headers
        config:
          headers:
            x-email: ${{actions.ngrok.oauth.identity.email}}
            x-name: ${{actions.ngrok.oauth.identity.name}}
            x-github-id: ${{actions.ngrok.oauth.identity.provider_user_id}}
            x-orgs: ${{actions.ngrok.oauth.identity.claims.orgs.join(',')}}
"""


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    with running_github() as fake:
        yield fake


@pytest.fixture(scope="module")
def edge(
    github: FakeGitHub, certs: Certs, upstream: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[IdentityEdge]:
    port = pick_port()
    github.redirect_uri = f"https://auth.edge.test:{port}/oauth2/callback"
    policy = BRIEF.format(client_id=github.client_id, secret=github.client_secret)
    providers = f"github: {{web: {github.url}, api: {github.url}}}"
    running = start_identity_edge(
        tmp_path_factory.mktemp("gh"),
        certs,
        port,
        {"app": policy},
        upstream.url,
        providers=providers,
    )
    yield running
    running.stop()


@pytest.mark.parametrize(
    ("login", "status", "email"),
    [("john", 200, "john@external.com"), ("dev", 200, "dev@example.com"), ("eve", 403, None)],
)
def test_the_brief_github_example(
    *,
    edge: IdentityEdge,
    github: FakeGitHub,
    certs: Certs,
    login: str,
    status: int,
    email: str | None,
) -> None:
    github.current = login
    browser = Browser(certs)
    try:
        response = browser.follow(edge.url("app", "/a?q=1"))
        assert response.status_code == status, edge.log()
        if email is not None:
            seen = json.loads(response.text)["headers"]
            assert seen["x-email"] == email  # the primary *verified* address
            assert seen["x-github-id"] == {"john": "1001", "dev": "1002"}[login]
            assert seen["x-name"] == {"john": "John External", "dev": "dev"}[login]
            assert seen["x-orgs"] == ("acme" if login == "john" else "")
        authorize = next(h for h in browser.hops if h.url.path == "/login/oauth/authorize")
        scope = authorize.url.params["scope"].split()
        assert {"read:user", "user:email", "read:org"} <= set(scope)
        assert authorize.url.params["code_challenge_method"] == "S256"
    finally:
        browser.close()


def edge_config(tmp_path: Path, policy: str, identity: str = "") -> Path:
    keys = write_keys(tmp_path / "keys.json")
    (tmp_path / "policy.yml").write_text(policy)
    section = identity or f"identity: {{auth_host: auth.example.com, keys_file: {keys}}}"
    config = tmp_path / "edge.yml"
    config.write_text(
        "listeners: [{name: web, address: '127.0.0.1:0'}]\n"
        f"{section}\n"
        "endpoints:\n"
        "  - {hostname: app.example.com, upstream: 'http://127.0.0.1:9',"
        f" traffic_policy_file: {tmp_path / 'policy.yml'}}}\n"
    )
    return config


def load_error(config: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(config, compile_hooks)
    return str(info.value)


def test_an_empty_client_id_says_how_to_register_an_app(tmp_path: Path) -> None:
    message = load_error(
        edge_config(
            tmp_path, "on_http_request: [{actions: [{type: oauth, config: {provider: github}}]}]"
        )
    )
    assert "Register an OAuth app at github" in message
    assert "https://auth.example.com/oauth2/callback" in message


def test_identity_is_required_by_an_edge(tmp_path: Path) -> None:
    policy = (
        "on_http_request: [{actions: [{type: oauth, config: {provider: github, client_id: x}}]}]"
    )
    message = load_error(edge_config(tmp_path, policy, identity="events: off"))
    assert "needs the edge config's identity: section" in message


def test_identity_section_errors(tmp_path: Path) -> None:
    policy = "on_http_request: [{actions: [{type: deny}]}]"
    keys = write_keys(tmp_path / "k.json")
    cases = {
        "identity: {auth_host: 'bad host', keys_file: k.json}": "must be a hostname",
        "identity: {auth_host: a.example.com, keys_file: nope.json}": "file not found",
        f"identity: {{auth_host: a.example.com, keys_file: {keys}, session_store: mongo}}": (
            "memory, sqlite:<file> or redis://"
        ),
        f"identity: {{auth_host: a.example.com, keys_file: {keys}, colour: red}}": "unknown key",
        f"identity: {{auth_host: app.example.com, keys_file: {keys}}}": "auth host's hostname",
    }
    for section, expected in cases.items():
        assert expected in load_error(edge_config(tmp_path, policy, section)), section
    (tmp_path / "k.json").write_text("{}")
    assert "JWK set" in load_error(
        edge_config(tmp_path, policy, f"identity: {{auth_host: a.example.com, keys_file: {keys}}}")
    )


def test_http_issuers_only_on_loopback_and_only_when_allowed(tmp_path: Path) -> None:
    oidc = (
        "on_http_request: [{actions: [{type: openid-connect, config:"
        " {issuer_url: '%s', client_id: c, client_secret: s}}]}]"
    )
    keys = write_keys(tmp_path / "keys.json")
    allowed = (
        f"identity: {{auth_host: a.example.com, keys_file: {keys},"
        " allow_insecure_loopback_issuer: true}"
    )
    assert "allow_insecure_loopback_issuer" in load_error(
        edge_config(tmp_path, oidc % "http://127.0.0.1:1")
    )
    assert "only a loopback host" in load_error(
        edge_config(tmp_path, oidc % "http://idp.example.com", allowed)
    )
    config = load_config(edge_config(tmp_path, oidc % "http://127.0.0.1:1", allowed), compile_hooks)
    assert config.identity is not None and config.identity.allow_insecure_loopback_issuer
