"""Each action end to end: a real `edgeward serve` process with a policy in
front of a real upstream, driven by httpx and curl over 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tests.proxy.proxy_support import free_port, wait_port

ROOT = Path(__file__).resolve().parents[2]
HOST = "app.test"

POLICY = """
on_http_request:
  - name: admin only from the office
    expressions: ["req.url.path.startsWith('/admin')"]
    actions:
      - type: restrict-ips
        config: {ip_policies: [office]}
  - name: deny
    expressions: ["req.url.path == '/deny'"]
    actions: [{type: deny, config: {status_code: 404}}]
  - name: close
    expressions: ["req.url.path == '/close'"]
    actions: [{type: close-connection}]
  - name: teapot
    expressions: ["req.url.path == '/teapot'"]
    actions:
      - type: custom-response
        config: {status_code: 418, body: "short and stout: ${req.method}"}
  - name: moved
    actions:
      - type: redirect
        config: {from: "/old/(.*)", to: "/new/$1", status_code: 308}
  - name: versioned
    actions:
      - type: url-rewrite
        config: {from: "/v2/", to: "/api/"}
  - name: hook
    expressions: ["req.url.path == '/hook'"]
    actions:
      - type: verify-webhook
        config: {provider: github, secret: webhook-secret}
  - name: tag
    actions:
      - type: set-vars
        config: {vars: [{who: "${conn.client_ip}"}]}
      - type: remove-headers
        config: {headers: [x-internal]}
      - type: add-headers
        config: {headers: {x-client: "${vars.who}"}}
      - type: log
        config: {metadata: {path: "${req.url.path}"}}
on_http_response:
  - actions:
      - type: add-headers
        config: {headers: {x-frame-options: DENY}}
      - type: remove-headers
        config: {headers: [x-upstream-secret]}
"""


@dataclass
class Edge:
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def events(self) -> list[dict[str, object]]:
        """The decision events from the file sink; stdout (the log) has the
        same lines."""
        file = self.log.with_name("events.jsonl")
        deadline = time.monotonic() + 3  # two outputs, each written by its own thread
        seen = None
        while True:
            lines = file.read_text().splitlines() if file.exists() else []
            in_log = [line for line in self.log.read_text().splitlines() if '"verdict"' in line]
            if (lines == in_log and lines == seen) or time.monotonic() > deadline:
                break
            seen = lines
            time.sleep(0.15)  # longer than an output's 50 ms gathering
        assert lines == in_log
        return [json.loads(line) for line in lines]


def _start(
    args: list[str], log: Path, port: int, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            args,
            stdout=out,
            stderr=out,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    try:
        wait_port(port, proc=proc)
    except (RuntimeError, TimeoutError) as exc:
        raise RuntimeError(f"{exc}:\n{log.read_text()}") from None
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = free_port()
    log = tmp_path_factory.mktemp("upstream") / "upstream.log"
    proc = _start(
        [sys.executable, str(ROOT / "examples" / "upstream.py"), "--port", str(port)], log, port
    )
    yield port
    _stop(proc)


def serve(
    directory: Path, upstream: int, endpoint_policy: str, listener_policy: str = ""
) -> tuple[Edge, subprocess.Popen[bytes]]:
    port = free_port()
    (directory / "policy.yml").write_text(endpoint_policy)
    listener = ""
    if listener_policy:
        (directory / "listener.yml").write_text(listener_policy)
        listener = "    traffic_policy_file: listener.yml\n"
    (directory / "edge.yml").write_text(
        f"listeners:\n  - name: public\n    address: 127.0.0.1:{port}\n{listener}"
        f"ip_policies:\n  office: {{allow: [203.0.113.0/24]}}\n"
        f"endpoints:\n  - name: app\n    hostname: {HOST}\n"
        f"    upstream: http://127.0.0.1:{upstream}\n    traffic_policy_file: policy.yml\n"
    )
    log = directory / "edge.log"
    # Events to stdout (the log) and to a file, as EDGEWARD_POLICY_EVENTS says.
    events = {"EDGEWARD_POLICY_EVENTS": f"stdout,{directory / 'events.jsonl'}"}
    proc = _start(
        [sys.executable, "-m", "edgeward.cli", "serve", "--config", str(directory / "edge.yml")],
        log,
        port,
        events,
    )
    return Edge(port, log), proc


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, upstream: int) -> Iterator[Edge]:
    edge, proc = serve(tmp_path_factory.mktemp("edge"), upstream, POLICY)
    yield edge
    _stop(proc)


@pytest.fixture
def client(edge: Edge) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=edge.url, headers={"host": HOST}, timeout=10) as c:
        yield c


def echoed(response: httpx.Response) -> dict[str, object]:
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()
    return data


def test_forwarded_request_is_tagged_and_cleaned(client: httpx.Client, edge: Edge) -> None:
    r = client.get("/hello", headers={"x-internal": "leak"})
    data = echoed(r)
    headers = {k.lower(): v for k, v in data["headers"].items()}  # type: ignore[union-attr]
    assert headers["x-client"] == "127.0.0.1" and "x-internal" not in headers
    assert r.headers["x-frame-options"] == "DENY" and r.headers["edgeward-request-id"]
    log_event = next(
        e for e in edge.events() if e["verdict"] == "log" and e["metadata"] == {"path": "/hello"}
    )
    assert log_event["rule"] == "tag" and log_event["endpoint"] == "app"
    assert log_event["request_id"] == r.headers["edgeward-request-id"]


def test_deny_and_custom_response_never_reach_the_upstream(
    client: httpx.Client, edge: Edge
) -> None:
    denied = client.get("/deny")
    assert denied.status_code == 404 and denied.content == b""
    assert denied.headers["x-frame-options"] == "DENY"  # response rules apply to the edge's answers
    teapot = client.post("/teapot")
    assert (teapot.status_code, teapot.text) == (418, "short and stout: POST")
    assert any(
        e["verdict"] == "deny" and e["rule"] == "deny" and e["status"] == 404 for e in edge.events()
    )


def test_restrict_ips_uses_the_layer4_address(client: httpx.Client, edge: Edge) -> None:
    r = client.get("/admin", headers={"x-forwarded-for": "203.0.113.9"})
    assert r.status_code == 403 and r.headers["edgeward-error"] == "ERR_EDGEWARD_3203"
    event = next(e for e in edge.events() if e["action"] == "restrict-ips")
    assert event["client_ip"] == "127.0.0.1" and event["verdict"] == "deny"


def test_redirect_and_url_rewrite(client: httpx.Client) -> None:
    moved = client.get("/old/page?x=1")
    assert moved.status_code == 308 and moved.headers["location"] == f"http://{HOST}/new/page?x=1"
    assert echoed(client.get("/v2/users?id=7"))["path"] == "/api/users?id=7"


def test_close_connection(client: httpx.Client) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/close")


def test_verify_webhook_with_curl(edge: Edge) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl not installed")
    body = b'{"action":"opened","number":1}'
    signature = "sha256=" + hmac.new(b"webhook-secret", body, hashlib.sha256).hexdigest()

    def post(sig: str) -> tuple[int, bytes]:
        done = subprocess.run(
            [
                curl,
                "-s",
                "-o",
                "-",
                "-w",
                "\n%{http_code}",
                "-H",
                f"host: {HOST}",
                "-H",
                f"x-hub-signature-256: {sig}",
                "-H",
                "content-type: application/json",
                "--data-binary",
                "@-",
                f"{edge.url}/hook",
            ],
            input=body,
            capture_output=True,
            check=True,
            timeout=15,
        )
        content, _, status = done.stdout.rpartition(b"\n")
        return int(status), content

    status, content = post(signature)
    assert status == 200 and json.loads(content)["body_bytes"] == len(body)
    status, _ = post("sha256=" + "0" * 64)
    assert status == 403
    event = next(e for e in edge.events() if e["action"] == "verify-webhook")
    assert (
        str(event["reason"]).startswith("github:") and "webhook-secret" not in edge.log.read_text()
    )


def test_on_tcp_connect_closes_before_any_byte(tmp_path: Path, upstream: int) -> None:
    edge, proc = serve(
        tmp_path,
        upstream,
        "on_http_request: [{actions: [{type: add-headers, config: {headers: {x-a: b}}}]}]\n",
        "on_tcp_connect:\n"
        "  - name: office only\n"
        "    actions: [{type: restrict-ips, config: {allow: [10.0.0.0/8]}}]\n",
    )
    try:
        with socket.create_connection(("127.0.0.1", edge.port), timeout=5) as s:
            s.settimeout(5)
            try:
                first = s.recv(1)
            except ConnectionResetError:
                first = b""
            assert first == b""  # closed without a byte, before any request was sent
        deadline = time.monotonic() + 5
        while not edge.events() and time.monotonic() < deadline:
            time.sleep(0.05)
        events = edge.events()  # the readiness probe of the test was a connection too
        assert events
        for event in events:
            assert (event["rule"], event["verdict"], event["phase"], event["client_ip"]) == (
                "office only",
                "deny",
                "on_tcp_connect",
                "127.0.0.1",
            )
    finally:
        _stop(proc)
