"""terminate-tls on https endpoints of edge.yml, through `edgeward serve`:
the listener terminates TLS, and the action checks that handshake (the
public "empty config = no change"): a version outside its range, or mutual
TLS it asks for and the client did not give, closes the connection.
The check runs whether the endpoint's on_tcp_connect comes at accept (the
listener's only endpoint: the handshake is made then) or after the
handshake (by SNI)."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator

import pytest
import trustme
from tests.policy.e2e import serve
from tests.proxy.proxy_support import Edge, start_edge

SERVER_CA = trustme.CA()
CLIENT_CA = trustme.CA()
ROGUE_CA = trustme.CA()
SERVER = SERVER_CA.issue_cert("v13.example.com", "mtls.example.com", "open.example.com")
ALICE = CLIENT_CA.issue_cert("alice@example.com", common_name="alice")
MALLORY = ROGUE_CA.issue_cert("alice@example.com", common_name="alice")


def policy(config: dict[str, object]) -> str:
    return json.dumps(
        {
            "on_tcp_connect": [{"actions": [{"type": "terminate-tls", "config": config}]}],
            "on_http_request": [
                {
                    "actions": [
                        {
                            "type": "custom-response",
                            "config": {
                                "body": "${actions.ngrok.terminate_tls.version} "
                                "${conn.tls.client.subject != ''"
                                " ? conn.tls.client.subject : 'none'}"
                            },
                        }
                    ]
                }
            ],
        }
    )


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    directory = tmp_path_factory.mktemp("terminate-tls-https")
    cert, key, client_ca, rogue_ca = (directory / n for n in ("s.pem", "s.key", "c.pem", "r.pem"))
    SERVER.cert_chain_pems[0].write_to_path(str(cert))
    SERVER.private_key_pem.write_to_path(str(key))
    CLIENT_CA.cert_pem.write_to_path(str(client_ca))
    ROGUE_CA.cert_pem.write_to_path(str(rogue_ca))
    # the listener accepts certificates of both CAs; the policy trusts one
    both = directory / "both.pem"
    both.write_text(client_ca.read_text() + rogue_ca.read_text())
    cas = {"mutual_tls_certificate_authorities": [client_ca.read_text()]}
    (directory / "v13.json").write_text(policy({"min_version": "1.3"}))
    (directory / "mtls.json").write_text(policy(cas))
    with serve({"/": lambda h: (200, [], b"upstream\n")}) as upstream:
        config = f"""
listeners:
  - name: only
    address: 127.0.0.1:{{port_only}}
    tls: {{{{certificates: [{{{{cert: {cert}, key: {key}}}}}]}}}}
  - name: shared
    address: 127.0.0.1:{{port_shared}}
    tls: {{{{certificates: [{{{{cert: {cert}, key: {key}}}}}], client_ca: {both}, client_cert: optional}}}}
endpoints:
  - name: v13
    hostname: v13.example.com
    upstream: {upstream.url}
    listeners: [only]
    traffic_policy_file: {directory / "v13.json"}
  - name: mtls
    hostname: mtls.example.com
    upstream: {upstream.url}
    listeners: [shared]
    traffic_policy_file: {directory / "mtls.json"}
  - name: open
    hostname: open.example.com
    upstream: {upstream.url}
    listeners: [shared]
"""  # noqa: E501
        running = start_edge(directory, config, listeners=["only", "shared"])
        try:
            yield running
        finally:
            running.stop()


def get(
    edge: Edge,
    listener: str,
    host: str,
    *,
    cert: trustme.LeafCert | None = None,
    max_version: ssl.TLSVersion | None = None,
) -> bytes:
    """The response to a GET (b"" when the connection was closed)."""
    ctx = ssl.create_default_context()
    SERVER_CA.configure_trust(ctx)
    if max_version is not None:
        ctx.maximum_version = max_version
    if cert is not None:
        cert.configure_cert(ctx)
    with socket.create_connection(("127.0.0.1", edge.ports[listener]), timeout=20) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname=host) as tls:
                tls.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
                out = b""
                while chunk := tls.recv(65536):
                    out += chunk
                return out
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            return b""


def test_versions_of_the_listeners_handshake_are_checked(edge: Edge) -> None:
    answer = get(edge, "only", "v13.example.com")
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"1.3 none"), answer
    assert get(edge, "only", "v13.example.com", max_version=ssl.TLSVersion.TLSv1_2) == b""


@pytest.mark.parametrize(
    ("cert", "expected"),
    [(None, b""), ("mallory", b""), ("alice", b"1.3 CN=alice")],
)
def test_mutual_tls_asked_for_by_the_policy(edge: Edge, cert: str | None, expected: bytes) -> None:
    leaf = {"alice": ALICE, "mallory": MALLORY, None: None}[cert]
    answer = get(edge, "shared", "mtls.example.com", cert=leaf)
    if expected:
        assert answer.startswith(b"HTTP/1.1 200") and expected in answer, answer
    else:
        assert answer == b""
    # the listener's other endpoint is not concerned
    assert get(edge, "shared", "open.example.com", cert=leaf).endswith(b"upstream\n")
