"""edge.yml's `agent_ingress:` and internal endpoints, and the agent's own
config file (version 3): what they accept and the located errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.agents.agents_support import Pki

from edgeward.agent import config as agent_config
from edgeward.config import load_config
from edgeward.errors import ConfigError


def edge(tmp_path: Path, pki: Pki, text: str) -> Path:
    path = tmp_path / "edge.yml"
    path.write_text(
        "listeners:\n  - {name: web, address: '127.0.0.1:8080'}\n"
        "  - {name: other, address: '127.0.0.1:8081'}\n" + text.format(pki=pki)
    )
    return path


INGRESS = """
agent_ingress:
  address: 127.0.0.1:4443
  tls: {{certificates: [{{cert: {pki.ingress_cert}, key: {pki.ingress_key}}}]}}
"""


def test_an_agent_ingress_and_its_defaults(tmp_path: Path, pki: Pki) -> None:
    config = load_config(edge(tmp_path, pki, INGRESS + "  domains: ['*.Apps.example.com.']\n"))
    ingress = config.agent_ingress
    assert ingress is not None
    assert (ingress.host, ingress.port) == ("127.0.0.1", 4443)
    assert ingress.domains == ("*.apps.example.com",)
    assert ingress.listeners == ("other", "web")  # every listener by default
    assert ingress.tcp is None and ingress.grace_period == 10.0
    text = INGRESS + "  listeners: [web]\n  tcp: {{ports: '20000-20009'}}\n  grace_period: 2\n"
    ingress = load_config(edge(tmp_path, pki, text)).agent_ingress
    assert ingress is not None and ingress.listeners == ("web",)
    assert ingress.tcp is not None and ingress.tcp.ports == (20000, 20009)
    assert ingress.tcp.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("  domains: ['bob.internal']\n", ".internal names need no entry"),
        ("  domains: ['not a host']\n", "public hostname"),
        ("  listeners: [nope]\n", "no listener named 'nope'"),
        ("  tcp: {{ports: '9-1'}}\n", "not a range of TCP ports"),
        ("  tcp: {{ports: 'x'}}\n", "PORT or LOW-HIGH"),
        ("  grace_period: -1\n", "0 or more"),
        ("  traffic_policy: {{on_http_request: []}}\n", "runs only on_tcp_connect"),
        ("  wat: 1\n", "unknown key 'wat'"),
    ],
)
def test_agent_ingress_mistakes(tmp_path: Path, pki: Pki, extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_config(edge(tmp_path, pki, INGRESS + extra))
    assert info.value.location is not None and info.value.location.line


def test_the_ingress_needs_tls_and_its_own_address(tmp_path: Path, pki: Pki) -> None:
    with pytest.raises(ConfigError, match="TLS only"):
        load_config(edge(tmp_path, pki, "agent_ingress: {{address: '127.0.0.1:4443'}}\n"))
    clash = INGRESS.replace("4443", "8080")
    with pytest.raises(ConfigError, match="shares the address of listener 'web'"):
        load_config(edge(tmp_path, pki, clash))


def test_internal_endpoints_are_on_no_listener(tmp_path: Path, pki: Pki) -> None:
    text = "endpoints:\n  - {{hostname: api.internal, upstream: 'http://127.0.0.1:9'}}\n"
    config = load_config(edge(tmp_path, pki, text))
    (endpoint,) = config.endpoints
    assert endpoint.internal and endpoint.listeners == ()
    text = (
        "endpoints:\n  - {{hostname: api.internal, upstream: 'http://127.0.0.1:9',"
        " listeners: [web]}}\n"
    )
    with pytest.raises(ConfigError, match="internal endpoint: it is on no listener"):
        load_config(edge(tmp_path, pki, text))
    text = (
        "endpoints:\n  - {{name: a, hostname: x.internal, upstream: 'http://127.0.0.1:9'}}\n"
        "  - {{name: b, hostname: x.internal, upstream: 'http://127.0.0.1:9'}}\n"
    )
    with pytest.raises(ConfigError, match=r"duplicate hostname 'x\.internal'"):
        load_config(edge(tmp_path, pki, text))


# --- the agent's config file -----------------------------------------------------------


def test_an_agent_config_v3(tmp_path: Path) -> None:
    path = tmp_path / "agent.yml"
    path.write_text(
        """
version: 3
agent:
  authtoken: ewt_file
  connect_url: edge.example.com:4443
  connect_cas: ca.pem
  heartbeat_interval: 1m30s
endpoints:
  - name: web
    url: https://alice.internal
    pooling_enabled: true
    traffic_policy: {on_http_request: [{actions: [{type: deny}]}]}
    upstream: {url: 8080}
  - name: ssh
    url: tcp://tcp.example.com:20001
    upstream: {url: "localhost:22", protocol: http1}
"""
    )
    file = agent_config.read_file(path, required=True)
    assert file.server == "edge.example.com:4443"
    assert file.ca_file == tmp_path / "ca.pem"
    assert file.heartbeat_interval == 90.0
    web, ssh = file.endpoints["web"], file.endpoints["ssh"]
    assert (web.kind, web.url, web.pooling_enabled) == ("https", "https://alice.internal", True)
    assert web.upstream.url == "http://localhost:8080"
    assert web.traffic_policy is not None and '"deny"' in web.traffic_policy
    assert (ssh.kind, ssh.upstream.url) == ("tcp", "tcp://localhost:22")
    settings = agent_config.settings(file, authtoken=None)
    assert settings.authtoken == "ewt_file"
    assert (settings.server_host, settings.server_port) == ("edge.example.com", 4443)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 2\n", "only version 3"),
        ("agent: {wat: 1}\n", "unknown key 'wat'"),
        ("endpoints: [{name: a, upstream: {url: 80, protocol: http2}}]\n", "not supported"),
        ("endpoints: [{name: a, url: 'ftp://x', upstream: {url: 80}}]\n", "not an endpoint URL"),
        ("endpoints: [{name: a, url: 'tcp://x:1', upstream: {url: 'http://x'}}]\n", "tcp://"),
        ("agent: {heartbeat_interval: soon}\n", "not a duration"),
        ("endpoints: [{name: a}]\n", "needs upstream"),
    ],
)
def test_agent_config_mistakes(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "agent.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        agent_config.read_file(path, required=True)
    assert info.value.location is not None


def test_add_authtoken_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.yml"
    path.write_text("version: 3\nagent: {connect_url: 'e.example.com:443'}\n")
    agent_config.add_authtoken("ewt_new", path)
    file = agent_config.read_file(path, required=True)
    assert (file.authtoken, file.server) == ("ewt_new", "e.example.com:443")
    assert path.stat().st_mode & 0o777 == 0o600


def test_backoff_is_jittered_and_capped_from_the_first_attempt() -> None:
    import random

    from edgeward.agent.run import BACKOFF_CAP, backoff

    rng = random.Random(1)
    first = [backoff(0, rng) for _ in range(50)]
    assert min(first) > 0 and max(first) <= 0.5 and len(set(first)) > 1
    assert all(backoff(40, rng) <= BACKOFF_CAP for _ in range(50))
