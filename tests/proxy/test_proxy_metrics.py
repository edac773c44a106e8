"""The admin listener: `/metrics` scraped with httpx from a running edge
(the values move with the traffic), `/healthz`, `/readyz`, and its
separation from the public listeners."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import h2.config
import h2.connection
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from proxy_support import Edge, Upstream, free_port, start_edge

from edgeward.config import load_config
from edgeward.errors import ConfigError

CONFIG = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
admin:
  address: 127.0.0.1:{port_admin}
endpoints:
  - name: app
    hostname: app.test
    upstream: {upstream}
    traffic_policy:
      on_http_request:
        - name: no-admin
          expressions: ["req.url.path.startsWith('/private')"]
          actions: [{{type: deny}}]
  - name: dead
    hostname: dead.test
    upstream: http://127.0.0.1:{dead_port}
events: off
"""


def _wait_for(predicate: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def edge(tmp_path: Path, upstream: Upstream) -> Iterator[Edge]:
    admin = free_port()
    running = start_edge(
        tmp_path, CONFIG, upstream=upstream.url, dead_port=free_port(), port_admin=admin
    )
    running.extra["admin"] = admin
    yield running
    running.stop()


def _admin(edge: Edge, path: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{edge.extra['admin']}{path}", timeout=5)


def scrape(edge: Edge) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (name, sorted labels)."""
    r = _admin(edge, "/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            out[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return out


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _get(edge: Edge, path: str, host: str = "app.test") -> httpx.Response:
    return httpx.get(edge.url(path), headers={"host": host}, timeout=5)


def test_request_latency_error_and_decision_metrics_move(edge: Edge) -> None:
    before = scrape(edge)
    for _ in range(3):
        assert _get(edge, "/hello").status_code == 200
    assert _get(edge, "/private/x").status_code == 403
    assert _get(edge, "/", host="dead.test").status_code == 502
    assert _get(edge, "/", host="nobody.test").status_code == 404
    after = scrape(edge)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ok = {"endpoint": "app", "status": "200", "protocol": "HTTP/1.1"}
    assert moved("edgeward_requests_total", **ok) == 3
    assert moved("edgeward_requests_total", endpoint="app", status="403", protocol="HTTP/1.1") == 1
    assert moved("edgeward_requests_total", endpoint="dead", status="502", protocol="HTTP/1.1") == 1
    assert moved("edgeward_requests_total", endpoint="", status="404", protocol="HTTP/1.1") == 1
    assert moved("edgeward_request_duration_seconds_count", endpoint="app") == 4
    assert moved("edgeward_request_duration_seconds_bucket", endpoint="app", le="+Inf") == 4
    assert value(after, "edgeward_request_duration_seconds_sum", endpoint="app") > 0
    assert moved("edgeward_upstream_errors_total", endpoint="dead", code="ERR_EDGEWARD_3006") == 1
    decision = {"endpoint": "app", "rule": "no-admin", "action": "deny", "verdict": "deny"}
    assert moved("edgeward_policy_decisions_total", **decision) == 1
    assert value(after, "edgeward_ready") == 1
    assert value(after, "process_open_fds") > 0
    backend = [k for k in after if k[0] == "edgeward_build_info"]
    assert len(backend) == 1


def test_a_request_refused_before_routing_is_counted(edge: Edge) -> None:
    """Garbage where a request line should be gets a 400 and is counted
    with no endpoint, as a security team watching the edge expects."""
    before = scrape(edge)
    with socket.create_connection(("127.0.0.1", edge.port), timeout=5) as sock:
        sock.sendall(b"NOT A REQUEST\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 ")
    after = scrape(edge)
    labels = {"endpoint": "", "status": "400", "protocol": "HTTP/1.1"}
    assert (
        value(after, "edgeward_requests_total", **labels)
        - value(before, "edgeward_requests_total", **labels)
        == 1
    )


def test_active_connections_and_http2_streams(edge: Edge) -> None:
    idle = [socket.create_connection(("127.0.0.1", edge.port)) for _ in range(3)]
    try:
        assert _wait_for(lambda: value(scrape(edge), "edgeward_connections_active") >= 3)
        s = socket.create_connection(("127.0.0.1", edge.port), timeout=5)
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        for stream_id in (1, 3):
            conn.send_headers(
                stream_id,
                [
                    (":method", "GET"),
                    (":path", "/slow?s=2"),
                    (":authority", "app.test"),
                    (":scheme", "http"),
                ],
                end_stream=True,
            )
        s.sendall(conn.data_to_send())
        with s:
            assert _wait_for(lambda: value(scrape(edge), "edgeward_http2_streams_active") == 2)
    finally:
        for sock in idle:
            sock.close()
    assert _wait_for(lambda: value(scrape(edge), "edgeward_http2_streams_active") == 0)
    assert _wait_for(lambda: value(scrape(edge), "edgeward_connections_active") == 0)


def test_reloads_are_counted(edge: Edge) -> None:
    good = edge.config.read_text()
    edge.signal(signal.SIGHUP)
    assert _wait_for(lambda: value(scrape(edge), "edgeward_reloads_total", result="ok") == 1)
    edge.config.write_text(good + "\nunknown_key: 1\n")
    edge.signal(signal.SIGHUP)
    assert _wait_for(lambda: value(scrape(edge), "edgeward_reloads_total", result="failed") == 1)
    assert value(scrape(edge), "edgeward_reloads_total", result="ok") == 1


def test_health_and_readiness(edge: Edge) -> None:
    assert (_admin(edge, "/healthz").status_code, _admin(edge, "/healthz").text) == (200, "ok\n")
    assert _admin(edge, "/readyz").status_code == 200
    assert _admin(edge, "/nothing").status_code == 404
    r = httpx.post(f"http://127.0.0.1:{edge.extra['admin']}/metrics", timeout=5)
    assert r.status_code == 405
    # draining: not ready, still alive, while a slow request finishes
    slow = threading.Thread(target=lambda: _get(edge, "/slow?s=2"))
    slow.start()
    time.sleep(0.5)
    edge.signal(signal.SIGTERM)
    assert _wait_for(lambda: _admin(edge, "/readyz").status_code == 503)
    assert _admin(edge, "/healthz").status_code == 200
    slow.join(10)
    assert edge.proc.wait(15) == 0


def test_the_public_listener_does_not_serve_metrics(edge: Edge) -> None:
    r = _get(edge, "/metrics")
    assert r.status_code == 200 and r.text == "hello\n"  # the upstream's answer
    r = _get(edge, "/metrics", host="127.0.0.1")
    assert r.status_code == 404 and "edgeward_requests" not in r.text


def test_admin_is_off_by_default_and_never_on_a_listener_address(tmp_path: Path) -> None:
    path = tmp_path / "edge.yml"
    base = "listeners: [{name: web, address: '127.0.0.1:8080'}]\n"
    path.write_text(base)
    assert load_config(path).admin is None
    path.write_text(base + "admin: {address: '0.0.0.0:8080'}\n")
    with pytest.raises(ConfigError, match=r"edge.yml:2:\d+: admin.address: .*listener 'web'"):
        load_config(path)
    path.write_text(base + "admin: {address: '127.0.0.1:9901', port: 1}\n")
    with pytest.raises(ConfigError, match="unknown key 'port'"):
        load_config(path)
