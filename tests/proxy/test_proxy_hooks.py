"""The proxy/policy seam (`edgeward.hooks`), proven with a tiny policy of
the test's own: the edge runs in-process with a factory that builds it from
each endpoint's `traffic_policy` data."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Generator, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from proxy_support import Upstream, curl, free_port, wait_port

from edgeward.config import IpPolicy, PolicySource, load_config
from edgeward.hooks import (
    CloseConnection,
    ConnectionInfo,
    Effect,
    EffectResult,
    EndpointInfo,
    ExchangeSummary,
    Fetch,
    FetchResult,
    Forward,
    LocalResponse,
    PassResponse,
    ReadBody,
    RequestHead,
    RequestOutcome,
    ResponseHead,
    ResponseOutcome,
)
from edgeward.proxy.server import Server

CALLS: list[tuple[str, Any]] = []


class Upper:
    def feed(self, data: bytes) -> bytes:
        return data.upper()

    def finish(self) -> bytes:
        return b"!"


class TinyExchange:
    def __init__(self, rules: Mapping[str, Any], endpoint: EndpointInfo, request_id: str) -> None:
        self.rules = rules
        self.endpoint = endpoint
        self.request_id = request_id

    def on_http_request(self, head: RequestHead) -> Generator[Effect, EffectResult, RequestOutcome]:
        rules = self.rules
        CALLS.append(("request", (self.endpoint.name, head.target.decode(), self.request_id)))
        if "deny" in rules and head.target.startswith(rules["deny"].encode()):
            return LocalResponse(
                403, [(b"content-type", b"text/plain")], b"denied\n", "ERR_TEST_DENY"
            )
        if rules.get("close") and head.target == b"/close-me":
            return CloseConnection()
        if "add_header" in rules:
            head.headers.append(tuple(v.encode() for v in rules["add_header"]))  # type: ignore[arg-type]
        if rules.get("read_body") and head.method == b"POST":
            body = yield ReadBody(limit=16)
            if body is None:
                return LocalResponse(
                    413, body=b"too big for the policy\n", error_code="ERR_TEST_BODY"
                )
            assert isinstance(body, bytes)
            if b"evil" in body:
                return LocalResponse(403, body=b"evil body\n", error_code="ERR_TEST_BODY")
            return Forward(head, body.replace(b"secret", b"******"))
        if "fetch" in rules and head.target == b"/fetched":
            result = yield Fetch(rules["fetch"])
            assert isinstance(result, FetchResult)
            return LocalResponse(200, body=b"fetched: " + result.body + str(result.status).encode())
        return Forward(head)

    def on_http_response(
        self, head: ResponseHead
    ) -> Generator[Effect, EffectResult, ResponseOutcome]:
        CALLS.append(("response", head.status))
        head.headers.append((b"x-policy", self.endpoint.name.encode()))
        if self.rules.get("upper"):
            return PassResponse(head, Upper())
        if self.rules.get("replace_5xx") and head.status >= 500:
            return LocalResponse(503, body=b"upstream trouble\n", error_code="ERR_TEST_5XX")
        return PassResponse(head)
        yield  # a generator even when it needs no effect

    def on_complete(self, summary: ExchangeSummary) -> None:
        CALLS.append(("complete", summary))


class TinyPolicy:
    def __init__(self, rules: Mapping[str, Any]) -> None:
        self.rules = rules

    def on_tcp_connect(self, conn: ConnectionInfo, endpoint: EndpointInfo | None = None) -> bool:
        CALLS.append(("tcp", (conn.client_ip, endpoint.name if endpoint else None)))
        return not self.rules.get("refuse_tcp")

    def on_tls_connect(self, conn: ConnectionInfo, endpoint: EndpointInfo) -> bool:
        return self.on_tcp_connect(conn, endpoint)

    def begin(
        self, conn: ConnectionInfo, endpoint: EndpointInfo, head: RequestHead, request_id: str
    ) -> TinyExchange:
        return TinyExchange(self.rules, endpoint, request_id)


def factory(source: PolicySource, ip_policies: Mapping[str, IpPolicy]) -> TinyPolicy:
    return TinyPolicy(source.document.data)


CONFIG = """
listeners:
  - name: web
    address: 127.0.0.1:{port}
  - name: gated
    address: 127.0.0.1:{gated_port}
    traffic_policy: {{add_header: [x-listener, "yes"]}}
  - name: solo
    address: 127.0.0.1:{solo_port}
endpoints:
  - name: plain
    hostname: plain.test
    upstream: {upstream}
    listeners: [web]
  - name: guarded
    hostname: guarded.test
    upstream: {upstream}
    listeners: [web]
    traffic_policy:
      deny: /admin
      close: true
      add_header: [x-added, by-policy]
      read_body: true
      fetch: {upstream}/hello
  - name: rewriting
    hostname: rewriting.test
    upstream: {upstream}
    listeners: [web]
    traffic_policy: {{upper: true}}
  - name: failing
    hostname: failing.test
    upstream: http://127.0.0.1:{dead_port}
    listeners: [web]
    traffic_policy: {{replace_5xx: true}}
  - name: refusing
    hostname: refusing.test
    upstream: {upstream}
    listeners: [gated]
    traffic_policy: {{refuse_tcp: true}}
  - name: behind-listener
    hostname: inner.test
    upstream: {upstream}
    listeners: [gated]
    traffic_policy: {{add_header: [x-endpoint, "yes"]}}
  - name: lonely
    hostname: lonely.test
    upstream: {upstream}
    listeners: [solo]
    traffic_policy: {{add_header: [x-lonely, "yes"]}}
"""


class InProcessEdge:
    def __init__(self, config_path: Path) -> None:
        self.server = Server(load_config(config_path, factory))
        self.token: trio.lowlevel.TrioToken | None = None
        self.thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)

    async def _main(self) -> None:
        self.token = trio.lowlevel.current_trio_token()
        await self.server.serve()

    def stop(self) -> None:
        assert self.token is not None
        trio.from_thread.run_sync(self.server.shutdown, trio_token=self.token)
        self.thread.join(15)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[dict[str, int]]:
    ports = {"port": free_port(), "gated_port": free_port(), "solo_port": free_port()}
    path = tmp_path_factory.mktemp("hooks") / "edge.yml"
    path.write_text(CONFIG.format(upstream=upstream.url, dead_port=free_port(), **ports))
    running = InProcessEdge(path)
    running.thread.start()
    for port in ports.values():
        wait_port(port)
    yield ports
    running.stop()


def get(
    ports: dict[str, int], host: str, path: str, listener: str = "port", **kw: Any
) -> httpx.Response:
    return httpx.request(
        kw.pop("method", "GET"),
        f"http://127.0.0.1:{ports[listener]}{path}",
        headers={"host": host},
        timeout=10,
        **kw,
    )


def test_no_policy_means_no_hook_calls(edge: dict[str, int]) -> None:
    CALLS.clear()
    assert get(edge, "plain.test", "/hello").status_code == 200
    assert [c for c in CALLS if c[0] != "tcp"] == []


def test_deny_answers_locally_and_the_response_phase_sees_it(edge: dict[str, int]) -> None:
    CALLS.clear()
    r = get(edge, "guarded.test", "/admin/panel")
    assert r.status_code == 403 and r.text == "denied\n"
    assert r.headers["edgeward-error"] == "ERR_TEST_DENY"
    assert r.headers["x-policy"] == "guarded"
    request_id = r.headers["edgeward-request-id"]
    assert ("request", ("guarded", "/admin/panel", request_id)) in CALLS
    assert ("response", 403) in CALLS
    summary = _wait_for_complete()
    assert (
        summary.status == 403 and summary.error_code == "ERR_TEST_DENY" and summary.upstream is None
    )


def _wait_for_complete() -> ExchangeSummary:
    """on_complete runs after the last byte is sent, so after the client has it."""
    for _ in range(100):
        done = [v for k, v in CALLS if k == "complete"]
        if done:
            return done[0]  # type: ignore[no-any-return]
        time.sleep(0.01)
    raise AssertionError("on_complete was not called")


def test_request_headers_modified_by_the_policy_reach_the_upstream(edge: dict[str, int]) -> None:
    r = get(edge, "guarded.test", "/headers")
    assert ["x-added", "by-policy"] in r.json()["headers"]
    assert r.headers["x-policy"] == "guarded"


def test_read_body_then_forward_the_rewritten_body(edge: dict[str, int]) -> None:
    r = get(edge, "guarded.test", "/echo", method="POST", content=b"my secret")
    assert r.status_code == 200 and r.content == b"my ******"
    r = get(edge, "guarded.test", "/echo", method="POST", content=b"evil")
    assert r.status_code == 403 and r.headers["edgeward-error"] == "ERR_TEST_BODY"
    r = get(edge, "guarded.test", "/echo", method="POST", content=b"x" * 100)
    assert r.status_code == 413 and r.text == "too big for the policy\n"


def test_read_body_of_a_chunked_upload(edge: dict[str, int]) -> None:
    r = get(edge, "guarded.test", "/echo", method="POST", content=iter([b"se", b"cret"]))
    assert r.content == b"******"


def test_fetch_effect_is_performed_by_the_edge(edge: dict[str, int]) -> None:
    r = get(edge, "guarded.test", "/fetched")
    assert r.status_code == 200 and r.text == "fetched: hello\n200"


def test_close_connection_outcome_sends_nothing(edge: dict[str, int]) -> None:
    with socket.create_connection(("127.0.0.1", edge["port"]), timeout=5) as s:
        s.sendall(b"GET /close-me HTTP/1.1\r\nHost: guarded.test\r\n\r\n")
        assert s.recv(100) == b""


def test_response_body_filter_rewrites_the_stream(edge: dict[str, int]) -> None:
    r = get(edge, "rewriting.test", "/hello")
    assert r.status_code == 200 and r.content == b"HELLO\n!"
    assert "content-length" not in r.headers or r.headers["content-length"] == "7"


def test_edge_made_errors_go_through_the_response_phase(edge: dict[str, int]) -> None:
    r = get(edge, "failing.test", "/hello")
    assert r.status_code == 503 and r.headers["edgeward-error"] == "ERR_TEST_5XX"


def test_on_tcp_connect_of_the_endpoint_runs_when_the_host_is_known(edge: dict[str, int]) -> None:
    with socket.create_connection(("127.0.0.1", edge["gated_port"]), timeout=5) as s:
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: refusing.test\r\n\r\n")
        assert s.recv(100) == b""


def test_on_tcp_connect_is_told_the_endpoint_or_listener(edge: dict[str, int]) -> None:
    CALLS.clear()
    # The listener's policy runs at accept (its "endpoint" is the listener);
    # the endpoint's once the Host header names it.
    assert get(edge, "inner.test", "/hello", listener="gated_port").status_code == 200
    assert [v for k, v in CALLS if k == "tcp"] == [
        ("127.0.0.1", "gated"),
        ("127.0.0.1", "behind-listener"),
    ]
    # A listener with one endpoint runs that endpoint's at accept.
    CALLS.clear()
    assert get(edge, "lonely.test", "/hello", listener="solo_port").status_code == 200
    assert [v for k, v in CALLS if k == "tcp"] == [("127.0.0.1", "lonely")]


def test_listener_policy_wraps_the_endpoint_policy(edge: dict[str, int]) -> None:
    r = get(edge, "inner.test", "/headers", listener="gated_port")
    headers = r.json()["headers"]
    assert ["x-listener", "yes"] in headers and ["x-endpoint", "yes"] in headers
    assert r.headers.get_list("x-policy") == [
        "behind-listener",
        "behind-listener",
    ]  # endpoint's, then listener's
    r = get(edge, "nobody.test", "/x", listener="gated_port")
    assert r.status_code == 404 and r.headers["x-policy"] == "gated"


def test_h2_requests_run_the_same_hooks(edge: dict[str, int]) -> None:
    out = curl(
        "--http2-prior-knowledge",
        "-H",
        "Host: guarded.test",
        "-D",
        "-",
        f"http://127.0.0.1:{edge['port']}/admin",
        timeout=10,
    )
    assert out.stdout.startswith("HTTP/2 403")
    assert "edgeward-error: ERR_TEST_DENY" in out.stdout
