"""HTTP/1.1 through the edge, end to end: real clients (httpx, curl, raw
sockets), the real edge process, a real upstream."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from proxy_support import Edge, Upstream, curl, free_port, raw_request, start_edge

CONFIG = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints:
  - name: app
    hostname: app.test
    upstream: {upstream}
  - name: rewrite
    hostname: rewrite.test
    upstream: {upstream}
    host_header: upstream
  - name: literal
    hostname: literal.test
    upstream: {upstream}
    host_header: internal.example
  - name: wild
    hostname: "*.wild.test"
    upstream: {upstream}
  - name: down
    hostname: down.test
    upstream: http://127.0.0.1:{dead_port}
  - name: unix
    hostname: unix.test
    upstream: unix:{unix_path}
limits:
  max_body_bytes: 1048576
  max_header_bytes: 8192
  max_header_count: 40
timeouts:
  header_read: 1
  keep_alive: 3
  upstream_response: 1
  client_send: 1
access_log: {access_log}
"""


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[Edge]:
    e = start_edge(
        tmp_path_factory.mktemp("h1"),
        CONFIG,
        upstream=upstream.url,
        dead_port=free_port(),
        unix_path=upstream.unix_path,
    )
    yield e
    e.stop()


@pytest.fixture
def client(edge: Edge) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=f"http://127.0.0.1:{edge.port}", headers={"host": "app.test"}, timeout=10
    ) as c:
        yield c


def test_get_small_response(client: httpx.Client) -> None:
    r = client.get("/hello")
    assert r.status_code == 200
    assert r.text == "hello\n"
    assert r.headers["content-type"] == "text/plain"
    assert len(r.headers["edgeward-request-id"]) >= 16


def test_request_ids_are_unique(client: httpx.Client) -> None:
    ids = {client.get("/hello").headers["edgeward-request-id"] for _ in range(20)}
    assert len(ids) == 20


def test_unknown_host_is_404_with_code(client: httpx.Client) -> None:
    r = client.get("/hello", headers={"host": "nobody.test"})
    assert r.status_code == 404
    assert r.headers["edgeward-error"] == "ERR_EDGEWARD_3200"
    assert "no endpoint" in r.text
    assert "edgeward-request-id" in r.headers


def test_wildcard_and_port_and_case_in_host(client: httpx.Client) -> None:
    assert client.get("/hello", headers={"host": "A.B.Wild.Test:8443"}).status_code == 200
    assert client.get("/hello", headers={"host": "wild.test"}).status_code == 404


def test_forwarding_headers_replace_untrusted_values(client: httpx.Client) -> None:
    r = client.get("/headers", headers={"x-forwarded-for": "6.6.6.6", "forwarded": "for=6.6.6.6"})
    got = dict((n.lower(), v) for n, v in r.json()["headers"])
    assert got["x-forwarded-for"] == "127.0.0.1"
    assert got["x-forwarded-proto"] == "http"
    assert got["x-forwarded-host"] == "app.test"
    assert got["forwarded"] == "for=127.0.0.1;host=app.test;proto=http"
    assert got["host"] == "app.test"
    assert "edgeward-request-id" in got


def test_hop_by_hop_headers_are_removed(client: httpx.Client) -> None:
    r = client.get(
        "/headers",
        headers={
            "connection": "keep-alive, x-secret",
            "x-secret": "1",
            "keep-alive": "5",
            "te": "trailers",
        },
    )
    names = {n.lower() for n, _ in r.json()["headers"]}
    assert not names & {"x-secret", "keep-alive", "te", "connection"} - {"connection"}


def test_host_rewrite_modes(client: httpx.Client, upstream: Upstream) -> None:
    r = client.get("/headers", headers={"host": "rewrite.test"})
    assert dict(r.json()["headers"])["host"] == f"127.0.0.1:{upstream.port}"
    r = client.get("/headers", headers={"host": "literal.test"})
    assert dict(r.json()["headers"])["host"] == "internal.example"
    assert dict(r.json()["headers"])["x-forwarded-host"] == "literal.test"


def test_keep_alive_reuses_client_and_upstream_connections(edge: Edge) -> None:
    with socket.create_connection(("127.0.0.1", edge.port)) as s:
        ports = []
        for _ in range(3):
            s.sendall(b"GET /conn HTTP/1.1\r\nHost: app.test\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += s.recv(65536)
            head, _, body = head.partition(b"\r\n\r\n")
            length = int(
                next(
                    ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")
                ).split(b":")[1]
            )
            while len(body) < length:
                body += s.recv(65536)
            ports.append(body)
    assert len(set(ports)) == 1, "upstream connection was not reused"


def test_pipelined_requests_answer_in_order(edge: Edge) -> None:
    req = b"GET /headers?n=%d HTTP/1.1\r\nHost: app.test\r\n\r\n"
    data = (
        b"".join(req % i for i in range(5))
        + b"GET /hello HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n"
    )
    out = raw_request(edge.port, data)
    assert out.count(b"HTTP/1.1 200") == 6
    positions = [out.index(b'"/headers?n=%d"' % i) for i in range(5)]
    assert positions == sorted(positions)
    assert out.endswith(b"hello\n")


def test_head_204_304_have_no_body(client: httpx.Client, edge: Edge) -> None:
    r = client.head("/hello")
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "6"
    for code in (204, 304):
        out = raw_request(
            edge.port,
            b"GET /status?code=%d HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n" % code,
        )
        head, _, body = out.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 %d" % code)
        assert body == b""


def test_chunked_upload_is_streamed_and_echoed(client: httpx.Client) -> None:
    def gen() -> Iterator[bytes]:
        for i in range(50):
            yield bytes([65 + i % 26]) * 1000

    r = client.post("/echo", content=gen())
    assert r.status_code == 200
    assert r.content == b"".join(gen())


def test_response_trailers_pass_through_chunked(edge: Edge) -> None:
    out = raw_request(
        edge.port,
        b"GET /trailers HTTP/1.1\r\nHost: app.test\r\nTE: trailers\r\nConnection: close\r\n\r\n",
    )
    assert b"part1," in out and b"part2" in out
    assert b"x-sum: 42" in out.lower()


def test_expect_100_continue_with_curl(edge: Edge) -> None:
    body = "x" * 5000
    out = curl(
        "-v",
        "-H",
        "Host: app.test",
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        body,
        f"http://127.0.0.1:{edge.port}/count",
        timeout=10,
    )
    assert "HTTP/1.1 100 Continue" in out.stderr
    assert json.loads(out.stdout)["bytes"] == 5000


def test_upstream_refused_is_502(client: httpx.Client) -> None:
    r = client.get("/hello", headers={"host": "down.test"})
    assert r.status_code == 502
    assert r.headers["edgeward-error"] == "ERR_EDGEWARD_3006"


def test_upstream_reset_is_502(client: httpx.Client) -> None:
    r = client.get("/close")
    assert r.status_code == 502
    assert r.headers["edgeward-error"] == "ERR_EDGEWARD_3007"


def test_upstream_garbage_is_502(client: httpx.Client) -> None:
    r = client.get("/garbage")
    assert r.status_code == 502
    assert r.headers["edgeward-error"] == "ERR_EDGEWARD_3004"


def test_upstream_timeout_is_504(client: httpx.Client) -> None:
    # The upstream would answer in an hour: only upstream_response (1 s) can
    # end this request (the client's own timeout, 10 s, would fail the test).
    r = client.get("/slow?s=3600")
    assert r.status_code == 504
    assert r.headers["edgeward-error"] == "ERR_EDGEWARD_3008"


def test_malformed_request_is_400(edge: Edge) -> None:
    out = raw_request(edge.port, b"GET / HTTP/1.1\r\nHost: app.test\r\nbad header line\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400")
    assert b"edgeward-error: ERR_EDGEWARD_3400" in out


def test_not_http_is_400(edge: Edge) -> None:
    out = raw_request(edge.port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40)
    assert out.startswith(b"HTTP/1.1 400")


def test_headers_too_large_is_431(edge: Edge) -> None:
    out = raw_request(
        edge.port, b"GET / HTTP/1.1\r\nHost: app.test\r\nx-big: " + b"a" * 10000 + b"\r\n\r\n"
    )
    assert out.startswith(b"HTTP/1.1 431")
    assert b"ERR_EDGEWARD_3431" in out


def test_too_many_headers_is_431(edge: Edge) -> None:
    many = b"".join(b"x-h%d: v\r\n" % i for i in range(60))
    out = raw_request(edge.port, b"GET / HTTP/1.1\r\nHost: app.test\r\n" + many + b"\r\n")
    assert out.startswith(b"HTTP/1.1 431")


def test_body_too_large_is_413_by_content_length(client: httpx.Client) -> None:
    r = client.post("/count", content=b"x" * (1024 * 1024 + 1))
    assert r.status_code == 413
    assert r.headers["edgeward-error"] == "ERR_EDGEWARD_3413"


def _post_chunked(port: int, size: int, *, last: bool) -> bytes:
    """POST /count with `size` bytes in 64 KiB chunks (with the last chunk
    or not) on a raw connection; the answer's bytes up to the edge's close."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /count HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n")
        while size:
            n = min(size, 65536)
            s.sendall(b"%x\r\n%s\r\n" % (n, b"x" * n))
            size -= n
        s.sendall(b"0\r\nConnection: close\r\n\r\n" if last else b"")
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def test_body_too_large_is_413_when_chunked(edge: Edge) -> None:
    limit = 1048576  # max_body_bytes
    # Exactly the limit passes; one byte more is refused with 413 and the
    # error code, before the body ends (the client sent everything it had,
    # so nothing unread resets the connection under the answer).
    ok = _post_chunked(edge.port, limit, last=True)
    assert ok.startswith(b"HTTP/1.1 200")
    assert b'"bytes": %d' % limit in ok
    refused = _post_chunked(edge.port, limit + 1, last=False)
    assert refused.startswith(b"HTTP/1.1 413")
    assert b"edgeward-error: ERR_EDGEWARD_3413" in refused


def test_slowloris_head_times_out_with_408(edge: Edge) -> None:
    """header_read bounds the whole head, not each read: a head that keeps
    arriving a line at a time, never complete, is answered 408 while the
    client is still sending (a per-read timer would never fire)."""
    out = b""
    with socket.create_connection(("127.0.0.1", edge.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: app.test\r\n")
        s.settimeout(0.2)
        for _ in range(150):  # up to 30 s of dripping; header_read is 1 s
            try:
                out = s.recv(65536)
                break
            except TimeoutError:
                pass
            try:
                s.sendall(b"x-drip: 1\r\n")
            except OSError:
                break
        if not out:
            s.settimeout(5)
            out = s.recv(65536)
    assert out.startswith(b"HTTP/1.1 408")
    assert b"edgeward-error: ERR_EDGEWARD_3408" in out


def test_idle_keep_alive_connection_is_closed(edge: Edge) -> None:
    # The connection stays open for the next request, then is closed once
    # idle (keep_alive: 3; the socket's 10 s timeout fails the test if not).
    with socket.create_connection(("127.0.0.1", edge.port), timeout=10) as s:
        for _ in range(2):
            s.sendall(b"GET /hello HTTP/1.1\r\nHost: app.test\r\n\r\n")
            assert s.recv(65536).endswith(b"hello\n")
        assert s.recv(10) == b""


def test_silent_new_connection_is_closed_after_header_timeout(edge: Edge) -> None:
    # Nothing sent, nothing answered: the edge just closes (header_read: 1;
    # the socket's 10 s timeout fails the test if it never does).
    with socket.create_connection(("127.0.0.1", edge.port), timeout=10) as s:
        assert s.recv(10) == b""


def test_access_log_has_one_json_line_per_request(client: httpx.Client, edge: Edge) -> None:
    client.get("/hello?marker=access-log-test&code=oauth-code-1&api_key=k-2&page=3")
    # the secret-looking parameters lose their value, as in the traffic inspector
    logged = "/hello?marker=access-log-test&code=[REDACTED]&api_key=[REDACTED]&page=3"
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        text = Path(edge.access_log).read_text()
        lines = [json.loads(x) for x in text.splitlines() if x]
        hits = [x for x in lines if x.get("path") == logged]
        if hits:
            break
        time.sleep(0.1)
    (hit,) = hits
    assert "oauth-code-1" not in text and "k-2" not in text
    assert hit["status"] == 200 and hit["method"] == "GET" and hit["host"] == "app.test"
    assert hit["client_ip"] == "127.0.0.1" and hit["endpoint"] == "app"
    assert hit["bytes_out"] == 6 and hit["upstream"].startswith("http://127.0.0.1:")
    assert {"time", "duration_ms", "request_id", "error", "bytes_in"} <= hit.keys()


def test_client_that_stops_reading_is_dropped(edge: Edge) -> None:
    size = 100_000_000
    with socket.create_connection(("127.0.0.1", edge.port), timeout=5) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET /big?n=%d HTTP/1.1\r\nHost: app.test\r\n\r\n" % size)
        time.sleep(2.5)  # client_send: 1 (+ the watchdog tick)
        total = 0
        try:
            while chunk := s.recv(1 << 20):
                total += len(chunk)
        except ConnectionResetError:
            pass
    assert total < size


def test_unix_socket_upstream(client: httpx.Client) -> None:
    r = client.get("/headers", headers={"host": "unix.test"})
    assert r.status_code == 200
    assert dict(r.json()["headers"])["host"] == "unix.test"


class HoldingUpstream:
    """An upstream that answers nothing until `release()`: it counts the
    requests it holds, so a test knows when the edge has forwarded them."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.held = threading.Semaphore(0)
        self.released = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            self.held.release()
            self.released.wait(30)
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nheld\n")

    def wait_held(self, count: int) -> None:
        for _ in range(count):
            assert self.held.acquire(timeout=10), "the edge did not forward the request"

    def release(self) -> None:
        self.released.set()

    def close(self) -> None:
        self.released.set()
        self.server.close()


def test_max_connections_holds_new_connections_back(tmp_path: Path, upstream: Upstream) -> None:
    config = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints:
  - hostname: hold.test
    upstream: {hold}
  - hostname: app.test
    upstream: {upstream}
limits:
  max_connections: 2
"""
    hold = HoldingUpstream()
    edge = start_edge(tmp_path, config, upstream=upstream.url, hold=hold.url)
    busy = [socket.create_connection(("127.0.0.1", edge.port), timeout=10) for _ in range(2)]
    try:
        for s in busy:
            s.sendall(b"GET / HTTP/1.1\r\nHost: hold.test\r\n\r\n")
        hold.wait_held(2)  # both connections are in an exchange
        with socket.create_connection(("127.0.0.1", edge.port), timeout=1) as third:
            third.sendall(b"GET /hello HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
            # /hello answers at once, unless the connection is held back.
            with pytest.raises(TimeoutError):
                third.recv(65536)
            hold.release()
            for s in busy:
                assert s.recv(65536).startswith(b"HTTP/1.1 200")
            third.settimeout(10)
            out = third.recv(65536)
        # Served once a busy connection went idle (and was closed to make room).
        assert out.startswith(b"HTTP/1.1 200")
    finally:
        hold.close()
        for s in busy:
            s.close()
        edge.stop()
