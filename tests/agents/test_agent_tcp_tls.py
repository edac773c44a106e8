"""`edgeward agent tcp` and `edgeward agent tls`: a port of the edge's range
per tcp endpoint (random, or asked for and allowed by `bind:host:port`), the
endpoint's on_tcp_connect policy, and SNI passthrough of TLS to the agent's
local TLS server (the edge never terminates it)."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.agents.agents_support import Pki, agent_edge, ingress_block
from tests.ports import free_ports
from tests.proxy.proxy_support import Upstream, free_port


def tcp_config(pki: Pki, first: int, last: int) -> str:
    return """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints: []
""" + ingress_block(
        pki,
        domains=[],
        extra=f"  tcp: {{{{address: 127.0.0.1, ports: '{first}-{last}', host: localhost}}}}\n",
    )


def http_over(port: int, path: str = "/hello") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
        except ConnectionResetError:  # closed with our request unread
            pass
        return data


def test_a_tcp_endpoint_forwards_raw_bytes(tmp_path: Path, pki: Pki, upstream: Upstream) -> None:
    first = free_ports(3)
    with agent_edge(tmp_path, pki, tcp_config(pki, first, first + 2)) as edge:
        token = edge.token("*")
        agent = edge.agent(token, "tcp", str(upstream.port))
        try:
            url = agent.url
            assert url.startswith("tcp://localhost:")
            port = int(url.rpartition(":")[2])
            assert first <= port <= first + 2
            response = http_over(port)
            assert response.startswith(b"HTTP/1.1 200") and response.endswith(b"hello\n")
            agent.wait_for(r"TCP\s+127\.0\.0\.1:\d+\s+[\d.]+ s\s+in \d+ B out \d+ B")
        finally:
            agent.kill()
        # the agent is gone: the port closes connections at once (never a hang)
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            assert sock.recv(10) == b""


def test_tcp_ports_asked_for_need_a_bind_rule(tmp_path: Path, pki: Pki, upstream: Upstream) -> None:
    first = free_ports(3)
    wanted = first + 1
    with agent_edge(tmp_path, pki, tcp_config(pki, first, first + 2)) as edge:
        token = edge.token(f"bind:localhost:{wanted}")
        # a random port needs an unrestricted ACL
        refused = edge.agent(token, "tcp", str(upstream.port))
        refused.wait_for("ERR_NGROK_356")
        assert refused.proc.wait(30) == 1
        other = edge.agent(token, "tcp", str(upstream.port), "--url", f"tcp://localhost:{first}")
        other.wait_for("ERR_NGROK_308")
        assert other.proc.wait(30) == 1
        agent = edge.agent(token, "tcp", str(upstream.port), "--url", f"tcp://localhost:{wanted}")
        try:
            assert agent.url == f"tcp://localhost:{wanted}"
            assert http_over(wanted).endswith(b"hello\n")
        finally:
            agent.kill()


def test_a_tcp_endpoints_policy_runs_on_connect(
    tmp_path: Path, pki: Pki, upstream: Upstream
) -> None:
    policy = tmp_path / "tcp-policy.yml"
    policy.write_text(
        "on_tcp_connect:\n  - actions:\n      - type: restrict-ips\n"
        "        config: {allow: [192.0.2.0/24]}\n"
    )
    first = free_port()
    with agent_edge(tmp_path, pki, tcp_config(pki, first, first)) as edge:
        token = edge.token("*")
        agent = edge.agent(token, "tcp", str(upstream.port), "--traffic-policy-file", str(policy))
        try:
            port = int(agent.url.rpartition(":")[2])
            assert http_over(port) == b""  # closed by restrict-ips before any byte
        finally:
            agent.kill()


@contextmanager
def tls_server(pki: Pki) -> Iterator[int]:
    """A local TLS app with its own certificate (app.tls.example.com)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.upstream_cert, pki.upstream_key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(65536)
                    body = b"served by the local TLS app"
                    tls.sendall(
                        b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s"
                        % (len(body), body)
                    )
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        listener.close()


def test_a_tls_endpoint_is_passed_through_by_sni(tmp_path: Path, pki: Pki) -> None:
    config = f"""
listeners:
  - name: web
    address: 127.0.0.1:{{port_web}}
    tls:
      certificates: [{{{{cert: {pki.public_cert}, key: {pki.public_key}}}}}]
endpoints: []
""" + ingress_block(pki, domains=["*.tls.example.com"])
    with agent_edge(tmp_path, pki, config) as edge, tls_server(pki) as local:
        token = edge.token("bind:*.tls.example.com")
        agent = edge.agent(token, "tls", str(local), "--url", "tls://app.tls.example.com")
        try:
            url = agent.url
            assert url == f"tls://app.tls.example.com:{edge.web_port}"
            # the certificate the client checks is the local app's: the edge's
            # own (*.dev.example.com, *.apps.example.com) would not verify
            out = subprocess.run(
                ["curl", "-sS", "--cacert", str(pki.ca), "--resolve",
                 f"app.tls.example.com:{edge.web_port}:127.0.0.1",
                 f"https://app.tls.example.com:{edge.web_port}/"],
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
            assert out.stdout == "served by the local TLS app", out.stderr
            agent.wait_for(r"TLS\s+127\.0\.0\.1:\d+")
            # other names on the listener are still the edge's own
            out = subprocess.run(
                ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", str(pki.ca),
                 "--resolve", f"x.apps.example.com:{edge.web_port}:127.0.0.1",
                 f"https://x.apps.example.com:{edge.web_port}/"],
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
            assert out.stdout == "404", out.stderr
        finally:
            agent.kill()
