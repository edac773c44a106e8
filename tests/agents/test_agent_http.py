"""`edgeward agent http` against `edgeward serve`, both real processes over
real TLS: requests, the console, policies on both sides, WebSocket and SSE,
pooling, failure behaviour (kill -9, the grace window, a restart), 200
streams at once, 200 MB each way with bounded memory, a revoke under load."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import wsproto
from tests.agents.agents_support import (
    AgentEdge,
    Pki,
    agent_edge,
    curl,
    ingress_block,
)
from tests.proxy.proxy_support import Upstream
from wsproto import events as ws

PLAIN = """
listeners:
  - name: web
    address: 127.0.0.1:{{port_web}}
{listener_policy}
endpoints: []
"""


def plain_edge(pki: Pki, *, grace: float = 10, listener_policy: str = "", more: str = "") -> str:
    extra = f"  grace_period: {grace}\n"
    return (
        PLAIN.format(listener_policy=listener_policy)
        + ingress_block(pki, domains=["*.apps.example.com"], extra=extra)
        + more
    )


@pytest.fixture
def edge(tmp_path: Path, pki: Pki) -> Iterator[AgentEdge]:
    with agent_edge(tmp_path, pki, plain_edge(pki)) as running:
        yield running


def get(edge: AgentEdge, url: str, *args: str) -> tuple[int, dict[str, str], bytes]:
    """GET through the edge's plain listener (`url` without a port: the listener's)."""
    parts = urlsplit(url)
    if parts.port is None:
        url = parts._replace(netloc=f"{parts.netloc}:{edge.web_port}").geturl()
    r = curl(url, edge.web_port, None, *args)
    return r.status, r.headers, r.body


def test_requests_the_console_and_a_clean_unbind(edge: AgentEdge, upstream: Upstream) -> None:
    token = edge.token("bind:*.apps.example.com")
    agent = edge.agent(token, "http", str(upstream.port), "--url", "http://one.apps.example.com")
    try:
        url = agent.url
        assert url == f"http://one.apps.example.com:{edge.web_port}"
        status, headers, body = get(edge, f"{url}/hello")
        assert (status, body) == (200, b"hello\n")
        assert "edgeward-request-id" in headers
        body_in = b"b" * 300_000  # more than a window
        status, _, body = _post(edge, f"{url}/count", body_in)
        assert status == 200
        assert json.loads(body) == {
            "bytes": len(body_in),
            "sha256": hashlib.sha256(body_in).hexdigest(),
        }
        status, _, _ = get(edge, f"{url}/hello", "-I")
        assert status == 200
        agent.wait_for(r"GET\s+/hello\s+200\s+[\d.]+ ms")
        agent.wait_for(r"POST\s+/count\s+200")
        agent.wait_for(r"HEAD\s+/hello\s+200")
        event = edge.wait_event("agent_bind", url=url)
        assert event["authtoken"] == token.id
        # Ctrl-C: unbind, GOAWAY, exit 0; the endpoint is gone at once (no grace)
        assert agent.stop() == 0
        edge.wait_event("agent_unbind", url=url)
        status, headers, _ = get(edge, f"{url}/hello")
        assert (status, headers["edgeward-error"]) == (404, "ERR_EDGEWARD_3200")
    finally:
        agent.kill()


def _post(edge: AgentEdge, url: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    host = urlsplit(url).hostname
    proc = subprocess.run(
        ["curl", "-sS", "-D", "-", "--resolve", f"{host}:{edge.web_port}:127.0.0.1",
         "--data-binary", "@-", url],
        input=body, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    head, _, rest = proc.stdout.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), {}, rest


def test_an_agent_policy_runs_inside_the_listener_policy(
    tmp_path: Path, pki: Pki, upstream: Upstream
) -> None:
    listener_policy = """    traffic_policy:
      on_http_request:
        - actions:
            - type: add-headers
              config: {{headers: {{x-listener: "1"}}}}
      on_http_response:
        - actions:
            - type: add-headers
              config: {{headers: {{x-listener-out: "1"}}}}
"""
    policy = tmp_path / "agent-policy.yml"
    policy.write_text(
        """
on_http_request:
  - expressions: ["req.url.path == '/secret'"]
    actions:
      - type: deny
        config: {status_code: 401}
  - actions:
      - type: add-headers
        config: {headers: {x-agent: "${endpoint.host}"}}
"""
    )
    config = plain_edge(pki, listener_policy=listener_policy)
    with agent_edge(tmp_path, pki, config) as edge:
        token = edge.token("*")
        agent = edge.agent(
            token, "http", str(upstream.port), "--url", "http://pol.apps.example.com",
            "--traffic-policy-file", str(policy),
        )  # fmt: skip
        try:
            url = agent.url
            status, headers, body = get(edge, f"{url}/headers")
            assert status == 200
            seen = dict(json.loads(body)["headers"])
            assert seen["x-listener"] == "1"
            assert seen["x-agent"] == "pol.apps.example.com"
            assert headers["x-listener-out"] == "1"
            status, headers, _ = get(edge, f"{url}/secret")
            assert status == 401
            assert headers["x-listener-out"] == "1"  # the listener's response phase wraps it
        finally:
            agent.kill()


def test_a_broken_policy_refuses_the_bind_with_locations_in_the_policy(
    tmp_path: Path, edge: AgentEdge, upstream: Upstream
) -> None:
    policy = tmp_path / "broken.yml"
    policy.write_text(
        "on_http_request:\n"
        "  - expressions: ['req.url.path.startsWith(']\n"
        "    actions: [{type: deny}]\n"
    )
    token = edge.token("*")
    agent = edge.agent(token, "http", str(upstream.port), "--traffic-policy-file", str(policy))
    try:
        match = agent.wait_for(r"traffic_policy:2:\d+: on_http_request\[0\]\.expressions\[0\]")
        assert str(edge.directory) not in match.string  # nothing of the edge's files
        agent.wait_for("ERR_NGROK_9026")
        assert agent.proc.wait(30) == 1
    finally:
        agent.kill()


def test_websocket_and_sse_through_a_tunnel(edge: AgentEdge, upstream: Upstream) -> None:
    token = edge.token("*")
    agent = edge.agent(token, "http", str(upstream.port), "--url", "http://ws.apps.example.com")
    try:
        agent.url  # noqa: B018  (bound)
        host = "ws.apps.example.com"
        # WebSocket: the upgrade, then frames both ways
        with socket.create_connection(("127.0.0.1", edge.web_port), timeout=20) as sock:
            conn = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
            sock.sendall(conn.send(ws.Request(host=host, target="/ws")))
            accepted = False
            while not accepted:
                conn.receive_data(sock.recv(65536))
                for event in conn.events():
                    assert not isinstance(event, ws.RejectConnection), event
                    accepted = accepted or isinstance(event, ws.AcceptConnection)
            for text in ("hello", "x" * 100_000):
                sock.sendall(conn.send(ws.TextMessage(data=text)))
                got = ""
                while got != text:
                    conn.receive_data(sock.recv(65536))
                    for event in conn.events():
                        if isinstance(event, ws.TextMessage):
                            got += event.data
            sock.sendall(conn.send(ws.CloseConnection(code=1000)))
        agent.wait_for(r"GET\s+/ws\s+101")
        # SSE: the first event arrives while the stream is still open
        request = (
            f"GET /sse?n=20&s=0.3 HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", edge.web_port), timeout=20) as sock:
            sock.sendall(request)
            data = b""
            while b"data: event 0" not in data:
                chunk = sock.recv(65536)
                assert chunk, data
                data += chunk
            assert b"text/event-stream" in data
            assert b"\r\n0\r\n\r\n" not in data  # not the end: events stream as they come
    finally:
        agent.kill()


def test_kill_9_mid_response_ends_the_client_connection(
    edge: AgentEdge, upstream: Upstream
) -> None:
    token = edge.token("*")
    agent = edge.agent(token, "http", str(upstream.port), "--url", "http://k.apps.example.com")
    try:
        agent.url  # noqa: B018
        size = 1 << 30
        request = f"GET /big?n={size} HTTP/1.1\r\nHost: k.apps.example.com\r\n\r\n".encode()
        with socket.create_connection(("127.0.0.1", edge.web_port), timeout=30) as sock:
            sock.sendall(request)
            received = sock.recv(65536)
            assert received.startswith(b"HTTP/1.1 200"), received[:200]
            agent.kill()  # SIGKILL mid-body
            while chunk := sock.recv(1 << 20):  # the edge closes: never a hang (timeout 30 s)
                received += chunk
            assert len(received) < size
        # a request while its agent is gone: 503 at once (the grace window)
        status, headers, _ = get(edge, "http://k.apps.example.com/hello")
        assert (status, headers.get("edgeward-error")) == (503, "ERR_EDGEWARD_3209"), headers
    finally:
        agent.kill()


def test_kill_9_before_the_response_is_a_502(edge: AgentEdge, upstream: Upstream) -> None:
    token = edge.token("*")
    agent = edge.agent(token, "http", str(upstream.port), "--url", "http://s.apps.example.com")
    try:
        agent.url  # noqa: B018
        result: list[tuple[int, dict[str, str], bytes]] = []
        thread = threading.Thread(
            target=lambda: result.append(get(edge, "http://s.apps.example.com/slow?s=30"))
        )
        thread.start()
        agent.wait_for(r"Forwarding")
        time.sleep(1)  # the request is in the agent's hands (not a timing assertion)
        agent.kill()
        thread.join(40)
        assert not thread.is_alive()
        status, headers, _ = result[0]
        assert status == 502
        assert headers["edgeward-error"] in ("ERR_EDGEWARD_3007", "ERR_EDGEWARD_3210")
    finally:
        agent.kill()


def test_a_restart_within_the_grace_window_gets_the_endpoint_back(
    edge: AgentEdge, upstream: Upstream
) -> None:
    token = edge.token("bind:*.apps.example.com")
    other = edge.token("bind:*.apps.example.com")
    url = "http://r.apps.example.com"
    first = edge.agent(token, "http", str(upstream.port), "--url", url)
    try:
        public = first.url
        first.kill()
        edge.wait_event("agent_endpoint_reserved", url=public)
        # reserved for its authtoken: another token cannot take it now
        thief = edge.agent(other, "http", str(upstream.port), "--url", url)
        thief.wait_for("ERR_NGROK_334")
        assert thief.proc.wait(30) == 1
        second = edge.agent(token, "http", str(upstream.port), "--url", url)
        try:
            assert second.url == public
            status, _, body = get(edge, f"{public}/hello")
            assert (status, body) == (200, b"hello\n")
        finally:
            second.kill()
    finally:
        first.kill()


def test_the_grace_window_ends(tmp_path: Path, pki: Pki, upstream: Upstream) -> None:
    with agent_edge(tmp_path, pki, plain_edge(pki, grace=1)) as edge:
        token = edge.token("*")
        agent = edge.agent(token, "http", str(upstream.port), "--url", "http://g.apps.example.com")
        try:
            public = agent.url
            agent.kill()
            edge.wait_event("agent_endpoint_withdrawn", url=public)
            status, headers, _ = get(edge, f"{public}/hello")
            assert (status, headers["edgeward-error"]) == (404, "ERR_EDGEWARD_3200")
        finally:
            agent.kill()


def test_two_hundred_streams_at_once_on_one_session(edge: AgentEdge, upstream: Upstream) -> None:
    token = edge.token("*")
    agent = edge.agent(token, "http", str(upstream.port), "--url", "http://c.apps.example.com")
    try:
        agent.url  # noqa: B018
        out = subprocess.run(
            ["h2load", "-n200", "-c1", "-m200", "-H", ":authority: c.apps.example.com",
             f"http://127.0.0.1:{edge.web_port}/slow?s=1"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert "200 succeeded, 0 failed, 0 errored" in out.stdout, out.stdout
        assert "200 2xx" in out.stdout, out.stdout
    finally:
        agent.kill()


def test_two_hundred_megabytes_each_way_in_bounded_memory(
    tmp_path: Path, pki: Pki, upstream: Upstream
) -> None:
    limits = "limits: {{max_body_bytes: 0}}\n"  # no cap on the upload
    with agent_edge(tmp_path, pki, plain_edge(pki, more=limits)) as edge:
        _two_hundred_megabytes(edge, upstream)


def _two_hundred_megabytes(edge: AgentEdge, upstream: Upstream) -> None:
    token = edge.token("*")
    agent = edge.agent(
        token, "http", str(upstream.port), "--url", "http://bulk.apps.example.com", "--quiet"
    )
    size = 200 * 1024 * 1024
    try:
        url = agent.url
        status, _, _ = get(edge, f"{url}/hello")  # warm: the first exchange's allocations
        assert status == 200
        edge_before, agent_before = edge.edge.rss_peak_kib(), agent.rss_peak_kib()
        # download: the upstream streams 200 MB through the agent and the edge
        out = subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
             "--resolve", f"bulk.apps.example.com:{edge.web_port}:127.0.0.1",
             f"{url}/big?n={size}"],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert out.stdout == f"200 {size}", out.stderr
        # upload: 200 MB from a pipe, counted and hashed by the upstream
        producer = subprocess.Popen(["head", "-c", str(size), "/dev/zero"], stdout=subprocess.PIPE)
        out = subprocess.run(
            ["curl", "-sS", "-T", "-", "-X", "POST",
             "--resolve", f"bulk.apps.example.com:{edge.web_port}:127.0.0.1", f"{url}/count"],
            stdin=producer.stdout, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        producer.wait(10)
        digest = hashlib.sha256()
        zeros = bytes(1 << 20)
        for _ in range(size >> 20):
            digest.update(zeros)
        assert json.loads(out.stdout) == {"bytes": size, "sha256": digest.hexdigest()}
        edge_rss, agent_rss = edge.edge.rss_peak_kib(), agent.rss_peak_kib()
        print(
            f"peak RSS before / after 200 MB each way: edge {edge_before} / {edge_rss} KiB,"
            f" agent {agent_before} / {agent_rss} KiB"
        )
        # what went through is never held: the peaks grow by a few windows, not by 200 MB
        assert edge_rss - edge_before < 40 * 1024
        assert agent_rss - agent_before < 40 * 1024
    finally:
        agent.kill()


@contextmanager
def named_server(name: bytes) -> Iterator[int]:
    """A tiny upstream that answers every GET with `name`."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-length", str(len(name)))
            self.end_headers()
            self.wfile.write(name)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.handle_error = lambda request, address: None  # type: ignore[method-assign]  # resets
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def test_pooling_shares_a_url_between_agents(edge: AgentEdge, upstream: Upstream) -> None:
    token = edge.token("*")
    url = "http://pool.apps.example.com"
    with named_server(b"A") as port_a, named_server(b"B") as port_b:
        a = edge.agent(token, "http", str(port_a), "--url", url, "--pooling-enabled", "--quiet")
        b = edge.agent(token, "http", str(port_b), "--url", url, "--pooling-enabled", "--quiet")
        try:
            assert a.url == b.url
            seen = {get(edge, f"{a.url}/")[2] for _ in range(40)}
            assert seen == {b"A", b"B"}  # one picked at random per request
            # without pooling a third agent is refused: the URL is online
            c = edge.agent(token, "http", str(upstream.port), "--url", url)
            c.wait_for("ERR_NGROK_334")
            assert c.proc.wait(30) == 1
            # one of the pool goes: the other serves everything
            assert a.stop() == 0
            assert {get(edge, f"{b.url}/")[2] for _ in range(10)} == {b"B"}
        finally:
            a.kill()
            b.kill()


def test_revoking_a_token_while_wrk_runs(edge: AgentEdge) -> None:
    token = edge.token("*")
    with named_server(b"ok") as port:
        agent = edge.agent(
            token, "http", str(port), "--url", "http://w.apps.example.com", "--quiet"
        )
        try:
            agent.url  # noqa: B018
            wrk = subprocess.Popen(
                ["wrk", "-t1", "-c8", "-d6s", "-H", "Host: w.apps.example.com",
                 f"http://127.0.0.1:{edge.web_port}/"],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            time.sleep(2)  # load is flowing (not a timing assertion)
            edge.revoke(token)
            edge.wait_event("agent_revoked", authtoken=token.id)
            status, headers, _ = get(edge, "http://w.apps.example.com/")
            assert (status, headers["edgeward-error"]) == (404, "ERR_EDGEWARD_3200")
            out, _ = wrk.communicate(timeout=60)  # wrk finishes: nothing hangs
            assert "requests in" in out
            agent.wait_for("refused the authtoken")
            assert agent.proc.wait(30) == 1
        finally:
            agent.kill()
