"""terminate-tls on an agent's tls endpoint, through `edgeward serve` and
`edgeward agent`: the edge terminates TLS itself (versions enforced, the
listener's or the policy's certificate presented, mutual TLS under each
strategy) and the agent's local app gets the decrypted bytes as plain TCP;
what the handshake was is visible to a later rule (a `log` event).
Clients: Python's ssl, curl, openssl s_client; certificates from trustme."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme
from tests.agents.agents_support import Agent, AgentEdge, Pki, agent_edge, ingress_block

CLIENT_CA = trustme.CA()  # issues the clients' certificates (mutual TLS)
ROGUE_CA = trustme.CA()  # a CA the policy does not trust
POLICY_CA = trustme.CA()  # issues the certificate a policy brings itself
ALICE = CLIENT_CA.issue_cert("alice@example.com", common_name="alice")
MALLORY = ROGUE_CA.issue_cert("alice@example.com", common_name="alice")
OWN = POLICY_CA.issue_cert("own.apps.example.com")


def pem(blob: trustme.Blob) -> str:
    return blob.bytes().decode()


@dataclass
class Recorder:
    """A plain TCP app: records what it receives, answers `echo:` + it."""

    port: int
    received: list[bytes] = field(default_factory=list)


@pytest.fixture(scope="module")
def app() -> Iterator[Recorder]:
    listener = socket.create_server(("127.0.0.1", 0))
    recorder = Recorder(listener.getsockname()[1])

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                try:
                    data = conn.recv(65536)
                    recorder.received.append(data)
                    conn.sendall(b"echo:" + data)
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()
    yield recorder
    listener.close()


LOG_RULE = {
    "actions": [
        {
            "type": "log",
            "config": {
                "metadata": {
                    "version": "${conn.tls.version}",
                    "sni": "${actions.ngrok.terminate_tls.sni}",
                    "client": "${conn.tls.client.subject != '' ? conn.tls.client.subject : 'none'}",
                }
            },
        }
    ]
}


def tls_policy(config: dict[str, object]) -> str:
    rule = {"actions": [{"type": "terminate-tls", "config": config}]}
    return json.dumps({"on_tcp_connect": [rule, LOG_RULE]})


POLICIES = {
    "v13": {"min_version": "1.3"},
    "own": {
        "server_certificate": pem(OWN.cert_chain_pems[0]),
        "server_private_key": pem(OWN.private_key_pem),
    },
    "mtls": {"mutual_tls_certificate_authorities": [pem(CLIENT_CA.cert_pem)]},
    "request": {
        "mutual_tls_certificate_authorities": [pem(CLIENT_CA.cert_pem)],
        "mutual_tls_verification_strategy": "request",
    },
    "any": {
        "mutual_tls_certificate_authorities": [pem(CLIENT_CA.cert_pem)],
        "mutual_tls_verification_strategy": "require-any",
    },
}  # fmt: skip


@dataclass
class Setup:
    edge: AgentEdge
    agents: dict[str, Agent]
    app: Recorder

    @property
    def port(self) -> int:
        return self.edge.web_port


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, pki: Pki, app: Recorder) -> Iterator[Setup]:
    directory = tmp_path_factory.mktemp("terminate-tls")
    config = f"""
listeners:
  - name: web
    address: 127.0.0.1:{{port_web}}
    tls:
      certificates: [{{{{cert: {pki.public_cert}, key: {pki.public_key}}}}}]
endpoints: []
""" + ingress_block(pki, domains=["*.apps.example.com"])
    with agent_edge(directory, pki, config) as edge:
        token = edge.token("bind:*.apps.example.com")
        agents = {}
        try:
            for name, policy in POLICIES.items():
                path = directory / f"{name}.json"
                path.write_text(tls_policy(policy))
                agents[name] = edge.agent(
                    token, "tls", str(app.port), "--url", f"tls://{name}.apps.example.com",
                    "--traffic-policy-file", str(path),
                )  # fmt: skip
            for agent in agents.values():
                assert agent.url.startswith("tls://")
            yield Setup(edge, agents, app)
        finally:
            for agent in agents.values():
                agent.kill()


def context(
    pki: Pki,
    *,
    cafile: Path | None = None,
    cadata: str | None = None,
    cert: trustme.LeafCert | None = None,
    max_version: ssl.TLSVersion | None = None,
) -> ssl.SSLContext:
    ctx = ssl.create_default_context(
        cafile=None if cadata else str(cafile or pki.ca), cadata=cadata
    )
    if max_version is not None:
        ctx.maximum_version = max_version
    if cert is not None:
        cert.configure_cert(ctx)
    return ctx


def talk(setup: Setup, name: str, ctx: ssl.SSLContext, data: bytes = b"ping\n") -> bytes:
    """Send `data` over TLS to the endpoint `name`; what comes back (b""
    when the edge closed the connection or refused the handshake)."""
    host = f"{name}.apps.example.com"
    with socket.create_connection(("127.0.0.1", setup.port), timeout=20) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                tls.sendall(data)
                out = b""
                while chunk := tls.recv(65536):
                    out += chunk
                return out
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            return b""


def logged(setup: Setup, sni: str, count: int) -> dict[str, object]:
    """The metadata of the `count`th log event for `sni` (events are written
    by a writer thread: waited for)."""
    deadline = time.monotonic() + 20
    while True:
        events = [e.get("metadata") for e in setup.edge.events() if e.get("action") == "log"]
        mine = [m for m in events if isinstance(m, dict) and m.get("sni") == sni]
        if len(mine) >= count:
            return mine[count - 1]
        assert time.monotonic() < deadline, f"no log event {count} for {sni}: {events}"
        time.sleep(0.05)


def count_logged(setup: Setup, sni: str) -> int:
    events = [e.get("metadata") for e in setup.edge.events() if e.get("action") == "log"]
    return sum(1 for m in events if isinstance(m, dict) and m.get("sni") == sni)


def test_the_app_gets_plain_bytes_and_a_later_rule_sees_the_handshake(
    setup: Setup, pki: Pki
) -> None:
    before = len(setup.app.received)
    seen = count_logged(setup, "v13.apps.example.com")
    assert talk(setup, "v13", context(pki)) == b"echo:ping\n"  # the listener's *.apps cert
    assert setup.app.received[before:] == [b"ping\n"]  # decrypted: not a TLS record
    assert logged(setup, "v13.apps.example.com", seen + 1) == {
        "version": "1.3",
        "sni": "v13.apps.example.com",
        "client": "none",
    }


def test_versions_are_enforced(setup: Setup, pki: Pki) -> None:
    assert talk(setup, "v13", context(pki, max_version=ssl.TLSVersion.TLSv1_2)) == b""
    # curl: TLS 1.2 at most is refused; 1.3 answers
    # the app echoes: to curl that is an HTTP/0.9 answer
    base = ["curl", "-sS", "--http0.9", "--max-time", "20", "--cacert", str(pki.ca), "--resolve",
            f"v13.apps.example.com:{setup.port}:127.0.0.1"]  # fmt: skip
    url = f"https://v13.apps.example.com:{setup.port}/"
    old = subprocess.run(
        [*base, "--tls-max", "1.2", url], capture_output=True, timeout=30, check=False
    )
    assert old.returncode != 0 and b"echo" not in old.stdout
    new = subprocess.run([*base, "--tlsv1.3", url], capture_output=True, timeout=30, check=False)
    assert new.stdout.startswith(b"echo:GET / HTTP/1.1\r\n"), new.stderr
    # without terminate-tls's min_version, 1.2 is accepted (the default range)
    tls12 = context(pki, cadata=pem(POLICY_CA.cert_pem), max_version=ssl.TLSVersion.TLSv1_2)
    assert talk(setup, "own", tls12) == b"echo:ping\n"


def test_the_policys_certificate_is_presented(setup: Setup, pki: Pki) -> None:
    # the listener's CA does not verify it; the policy's CA does
    assert talk(setup, "own", context(pki)) == b""
    assert talk(setup, "own", context(pki, cadata=pem(POLICY_CA.cert_pem))) == b"echo:ping\n"
    ca = setup.edge.directory / "policy-ca.pem"
    POLICY_CA.cert_pem.write_to_path(str(ca))
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{setup.port}",
         "-servername", "own.apps.example.com", "-CAfile", str(ca), "-verify_return_error"],
        input=b"", capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    text = out.stdout.decode(errors="replace")
    assert "Verify return code: 0 (ok)" in text, text + out.stderr.decode(errors="replace")
    assert "own.apps.example.com" in text or "Testing cert" in text


@pytest.mark.parametrize(
    ("endpoint", "client", "answered"),
    [
        ("mtls", None, False),
        ("mtls", "mallory", False),
        ("mtls", "alice", True),
        ("any", None, False),
        ("any", "mallory", False),  # verified all the same (docs/policy.md)
        ("any", "alice", True),
        ("request", None, True),
        ("request", "mallory", False),
        ("request", "alice", True),
    ],
)
def test_mutual_tls_strategies(
    setup: Setup, pki: Pki, endpoint: str, client: str | None, answered: bool
) -> None:
    cert = {"alice": ALICE, "mallory": MALLORY, None: None}[client]
    sni = f"{endpoint}.apps.example.com"
    before = count_logged(setup, sni)
    out = talk(setup, endpoint, context(pki, cert=cert))
    assert out == (b"echo:ping\n" if answered else b"")
    if answered:  # the later rule saw the verified client certificate (or none)
        assert ("CN=alice" in str(logged(setup, sni, before + 1)["client"])) is (client == "alice")


def test_mutual_tls_with_curl_and_openssl(setup: Setup, pki: Pki) -> None:
    directory = setup.edge.directory
    ALICE.private_key_and_cert_chain_pem.write_to_path(str(directory / "alice.pem"))
    # the app echoes: to curl that is an HTTP/0.9 answer
    base = ["curl", "-sS", "--http0.9", "--max-time", "20", "--cacert", str(pki.ca), "--resolve",
            f"mtls.apps.example.com:{setup.port}:127.0.0.1"]  # fmt: skip
    url = f"https://mtls.apps.example.com:{setup.port}/"
    without = subprocess.run([*base, url], capture_output=True, timeout=30, check=False)
    assert b"echo" not in without.stdout
    with_cert = subprocess.run(
        [*base, "--cert", str(directory / "alice.pem"), url],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert with_cert.stdout.startswith(b"echo:GET / HTTP/1.1"), with_cert.stderr
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{setup.port}", "-quiet",
         "-servername", "mtls.apps.example.com", "-CAfile", str(pki.ca),
         "-cert", str(directory / "alice.pem")],
        input=b"hello\n", capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    assert out.stdout == b"echo:hello\n", out.stderr
