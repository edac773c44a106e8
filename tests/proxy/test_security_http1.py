"""Security regressions of the HTTP/1.1 data plane, through the running
edge: pool poisoning by an upstream, h2c upgrade smuggling, CONNECT, path
normalisation before the policy, what error bodies tell the public, and the
bytes an upgraded exchange relayed.

Each upstream here is a raw-socket server run by the test (a thread on
127.0.0.1), so it can misbehave byte for byte."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from proxy_support import Edge, Upstream, curl, free_port, raw_request, start_edge
from wsproto import ConnectionType, WSConnection
from wsproto import events as ws

Handler = Callable[[socket.socket, bytes], bool]
"""Answers one request head on the socket; False closes the connection."""


class RawUpstream:
    """An HTTP/1.1 upstream made of raw sockets: each request head is
    given to `handler`; it records every request line it saw."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.lines: list[bytes] = []
        self.heads: list[bytes] = []
        self.connections = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            try:
                while True:
                    while b"\r\n\r\n" not in buf:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buf += data
                    head, _, buf = buf.partition(b"\r\n\r\n")
                    self.lines.append(head.split(b"\r\n", 1)[0])
                    self.heads.append(head)
                    if not self.handler(conn, head):
                        return
            except OSError:
                return

    def close(self) -> None:
        self._sock.close()


@contextlib.contextmanager
def raw_upstream(handler: Handler) -> Iterator[RawUpstream]:
    up = RawUpstream(handler)
    try:
        yield up
    finally:
        up.close()


CONFIG = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints:
  - name: app
    hostname: app.test
    upstream: {upstream}
access_log: {access_log}
"""

CODECS = ["fast", "h11"]


@contextlib.contextmanager
def edge_for(
    tmp: Path, upstream: str, *, config: str = CONFIG, codec: str = "fast", **values: object
) -> Iterator[Edge]:
    edge = start_edge(tmp, config, args=("--http1", codec), upstream=upstream, **values)
    try:
        yield edge
    finally:
        edge.stop()


def get(port: int, path: str, *, host: str = "app.test", extra: str = "") -> bytes:
    """One request on a fresh connection (the edge closes it after)."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}\r\n"
    return raw_request(port, request.encode())


def read_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length body from a kept-alive socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(header(data, b"content-length") or 0)
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed mid-body"
        body += chunk
    return head + b"\r\n\r\n" + body


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def body_of(response: bytes) -> bytes:
    return response.partition(b"\r\n\r\n")[2]


def header(response: bytes, name: bytes) -> bytes | None:
    for line in response.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


# --- 1. upstream pool poisoning ------------------------------------------------------

INJECTED = b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\ninjected"


def _own_answer(conn: socket.socket, path: bytes) -> None:
    body = b"own answer to " + path
    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%b" % (len(body), body))


def _poisoner(delay: float) -> Handler:
    """/poison is answered `content-length: 2` and then a complete second
    response (at once, or `delay` seconds later); /head-body answers a HEAD
    with a body. Everything else gets its own answer."""

    def handle(conn: socket.socket, head: bytes) -> bool:
        method, path = head.split(b" ", 2)[:2]
        if path == b"/poison":
            answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
            if delay:
                conn.sendall(answer)
                time.sleep(delay)
                conn.sendall(INJECTED)
            else:
                conn.sendall(answer + INJECTED)  # one write: one read at the edge
        elif path == b"/head-body" and method == b"HEAD":
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\n" + b"injected")
        else:
            _own_answer(conn, path)
        return True

    return handle


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(
    ("method", "path", "delay"),
    [("GET", "/poison", 0.0), ("GET", "/poison", 0.05), ("HEAD", "/head-body", 0.0)],
)
def test_bytes_after_a_response_never_reach_the_next_client(
    tmp_path: Path, codec: str, method: str, path: str, delay: float
) -> None:
    with raw_upstream(_poisoner(delay)) as up, edge_for(tmp_path, up.url, codec=codec) as edge:
        for _ in range(3):  # the attacker's request, then a victim on another connection
            request = f"{method} {path} HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n"
            first = raw_request(edge.port, request.encode())
            assert status_of(first) == 200
            time.sleep(delay * 3)  # the late injection has arrived before the victim comes
            victim = get(edge.port, "/victim")
            assert body_of(victim) == b"own answer to /victim", victim
        assert b"GET /victim HTTP/1.1" in up.lines


# --- policy in front of a raw upstream -------------------------------------------------

GUARDED = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints:
  - name: app
    hostname: app.test
    upstream: {upstream}{escaped_slashes}
    traffic_policy:
      on_http_request:
        - name: no admin area
          expressions:
            - "req.url.path.startsWith('/admin')"
          actions:
            - type: deny
              config:
                status_code: 403
access_log: {access_log}
events: off
"""


def _switcher(conn: socket.socket, head: bytes) -> bool:
    """Accepts any Upgrade (h2c, websocket) with a 101, then goes on reading
    requests on the connection as if they came through the new protocol;
    everything else gets its own answer."""
    lower = head.lower()
    if b"\r\nupgrade:" in lower:
        protocol = lower.split(b"\r\nupgrade:", 1)[1].split(b"\r\n", 1)[0].strip()
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %b\r\n"
            b"Sec-WebSocket-Accept: x\r\n\r\n" % protocol
        )
    else:
        _own_answer(conn, head.split(b" ", 2)[1])
    return True


@contextlib.contextmanager
def guarded_edge(
    tmp: Path, handler: Handler, escaped_slashes: str = "reject"
) -> Iterator[tuple[Edge, RawUpstream]]:
    rule = "" if escaped_slashes == "reject" else f"\n    escaped_slashes: {escaped_slashes}"
    with (
        raw_upstream(handler) as up,
        edge_for(tmp, up.url, config=GUARDED, escaped_slashes=rule) as edge,
    ):
        yield edge, up


# --- 2. h2c upgrade smuggling ----------------------------------------------------------

H2C_UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade, HTTP2-Settings\r\n"
    b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
)


@pytest.mark.parametrize(
    "upgrade",
    [
        H2C_UPGRADE,
        H2C_UPGRADE.replace(b"Connection: Upgrade, HTTP2-Settings", b"Connection: upgrade"),
        H2C_UPGRADE.replace(b"Upgrade: h2c", b"Upgrade: websocket, h2c"),
        H2C_UPGRADE.replace(b"GET /", b"POST /").replace(b"Upgrade: h2c", b"Upgrade: websocket"),
    ],
    ids=["h2c", "h2c-settings-not-in-connection", "list", "websocket-by-post"],
)
def test_an_h2c_upgrade_cannot_tunnel_past_the_policy(tmp_path: Path, upgrade: bytes) -> None:
    with guarded_edge(tmp_path, _switcher) as (edge, up):
        with socket.create_connection(("127.0.0.1", edge.port), timeout=5) as s:
            s.sendall(upgrade)
            answer = read_response(s)
            assert status_of(answer) == 200, answer  # answered as HTTP/1.1
            assert body_of(answer) == b"own answer to /"
            s.sendall(b"GET /admin HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
            assert status_of(read_response(s)) == 403
        assert up.lines == [upgrade.split(b"\r\n", 1)[0]]  # /admin never reached it
        forwarded = up.heads[0].lower()
        assert b"upgrade" not in forwarded and b"http2-settings" not in forwarded


def test_a_websocket_upgrade_meets_the_policy_first(tmp_path: Path) -> None:
    request = (
        b"GET %b HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    with guarded_edge(tmp_path, _switcher) as (edge, up):
        denied = raw_request(edge.port, request % b"/admin", timeout=2, read_until_close=False)
        assert status_of(denied) == 403
        switched = raw_request(edge.port, request % b"/chat", timeout=2, read_until_close=False)
        assert status_of(switched) == 101
        assert header(switched, b"upgrade") == b"websocket"
        assert up.lines == [b"GET /chat HTTP/1.1"]


def test_a_101_to_another_protocol_is_a_bad_gateway(tmp_path: Path) -> None:
    def h2c_anyway(conn: socket.socket, head: bytes) -> bool:
        conn.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
        )
        return True

    request = (
        b"GET /chat HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    )
    with raw_upstream(h2c_anyway) as up, edge_for(tmp_path, up.url) as edge:
        answer = raw_request(edge.port, request, timeout=5)
        assert status_of(answer) == 502
        assert header(answer, b"edgeward-error") == b"ERR_EDGEWARD_3004"


# --- 3. CONNECT ---------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_connect_is_405_and_never_forwarded(tmp_path: Path, codec: str) -> None:
    with raw_upstream(_switcher) as up, edge_for(tmp_path, up.url, codec=codec) as edge:
        answer = raw_request(
            edge.port,
            b"CONNECT app.test:443 HTTP/1.1\r\nHost: app.test:443\r\n\r\n"
            b"GET /admin HTTP/1.1\r\nHost: app.test\r\n\r\n",  # optimistic tunnel bytes
        )
        assert status_of(answer) == 405
        assert header(answer, b"edgeward-error") == b"ERR_EDGEWARD_3405"
        assert answer.count(b"HTTP/1.1 ") == 1  # closed: what followed was not read as HTTP
        assert up.lines == []


# --- 4. path normalisation before the policy --------------------------------------------

BYPASSES = [
    "/./admin",
    "/x/../admin",
    "/x/%2e%2e/admin",
    "/x/%2E%2e/admin",
    "/x/.%2e/admin",
    "//admin",
    "///admin/x",
    "/%61dmin",
    "/x/./../admin",
    "/admin/../x/../admin",
    "/..//admin",
]


@pytest.mark.parametrize("path", BYPASSES)
def test_a_deny_on_admin_cannot_be_bypassed_by_the_path(tmp_path: Path, path: str) -> None:
    with guarded_edge(tmp_path, _switcher) as (edge, up):
        answer = get(edge.port, path)
        assert status_of(answer) == 403, answer
        assert up.lines == []


@pytest.mark.parametrize(
    ("escaped_slashes", "path", "status", "forwarded"),
    [
        ("reject", "/%2fadmin", 400, None),
        ("reject", "/x%5C..%5Cadmin", 400, None),
        ("reject", "/x\\..\\admin", 400, None),
        ("unescape", "/%2fadmin", 403, None),
        ("unescape", "/x%5C..%5Cadmin", 403, None),
        ("unescape", "/x\\..\\admin", 403, None),
        ("unescape", "/a%2fb", 200, b"/a/b"),
        ("keep", "/a%2fb", 200, b"/a%2Fb"),
        ("keep", "/x/..%2fadmin", 200, b"/x/..%2Fadmin"),  # not a dot-segment here
    ],
)
def test_escaped_slashes_follow_the_endpoint_rule(
    tmp_path: Path, escaped_slashes: str, path: str, status: int, forwarded: bytes | None
) -> None:
    with guarded_edge(tmp_path, _switcher, escaped_slashes) as (edge, up):
        answer = get(edge.port, path)
        assert status_of(answer) == status, answer
        if status == 400:
            assert header(answer, b"edgeward-error") == b"ERR_EDGEWARD_3440"
        assert up.lines == ([b"GET %b HTTP/1.1" % forwarded] if forwarded else [])


def test_the_normalised_path_is_forwarded_and_the_query_kept(tmp_path: Path) -> None:
    with guarded_edge(tmp_path, _switcher) as (edge, up):
        answer = get(edge.port, "/x/./y/../%7euser//%c3%a9?q=/../admin&%2e=%2f")
        assert status_of(answer) == 200
        assert up.lines == [b"GET /x/~user/%C3%A9?q=/../admin&%2e=%2f HTTP/1.1"]
        assert status_of(get(edge.port, "/%zz")) == 400


def test_http2_requests_are_normalised_too(tmp_path: Path) -> None:
    with guarded_edge(tmp_path, _switcher) as (edge, up):
        for path in ("/x/../admin", "/%2e/admin", "//admin"):
            out = curl(
                "--http2-prior-knowledge",
                "--path-as-is",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                "host: app.test",
                f"http://127.0.0.1:{edge.port}{path}",
            )
            assert out.stdout == "403", (path, out.stderr)
        assert up.lines == []


# --- 5, 8. what an error body tells the public ------------------------------------------

DEAD = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints:
  - name: down
    hostname: down.test
    upstream: http://127.0.0.1:{dead_port}
"""


def test_a_502_names_no_upstream_address_and_logs_the_detail(tmp_path: Path) -> None:
    dead_port = free_port()
    with edge_for(tmp_path, "", config=DEAD, dead_port=dead_port) as edge:
        answer = get(edge.port, "/", host="down.test")
        assert status_of(answer) == 502
        body = body_of(answer)
        assert b"127.0.0.1" not in body and str(dead_port).encode() not in body, body
        rid = header(answer, b"edgeward-request-id")
        assert rid is not None
        assert body == (
            b"502 the upstream refused the connection\nerror: ERR_EDGEWARD_3006\n"
            b"request_id: " + rid + b"\n"
        )
        edge.stop()
        log = edge.log_text()
        line = next(line for line in log.splitlines() if rid.decode() in line)
        assert f"127.0.0.1:{dead_port}" in line and "ERR_EDGEWARD_3006" in line


@pytest.mark.parametrize(
    ("accept", "json_body"),
    [
        ("application/json", True),
        ("application/json, text/plain, */*", True),
        ("text/plain;q=0.5, application/json", True),
        ("*/*", False),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),
        ("", False),
    ],
)
def test_edge_errors_are_json_when_the_client_prefers_it(
    tmp_path: Path, accept: str, json_body: bool
) -> None:
    with edge_for(tmp_path, "", config=DEAD, dead_port=free_port()) as edge:
        extra = f"Accept: {accept}\r\n" if accept else ""
        for host, status, code in (
            ("down.test", 502, "ERR_EDGEWARD_3006"),
            ("nowhere.test", 404, "ERR_EDGEWARD_3200"),
        ):
            answer = get(edge.port, "/", host=host, extra=extra)
            assert status_of(answer) == status
            rid = (header(answer, b"edgeward-request-id") or b"").decode()
            if json_body:
                assert header(answer, b"content-type") == b"application/json"
                error = json.loads(body_of(answer))["error"]
                assert error["code"] == code and error["status"] == status
                assert error["request_id"] == rid and error["message"]
            else:
                assert header(answer, b"content-type") == b"text/plain; charset=utf-8"
                assert f"error: {code}\nrequest_id: {rid}\n".encode() in body_of(answer)


# --- 9. WebSocket byte counts ----------------------------------------------------------------

WS_CONFIG = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints:
  - name: app
    hostname: app.test
    upstream: {upstream}
access_log: {access_log}
"""


def test_an_upgraded_exchange_logs_the_bytes_it_relayed(tmp_path: Path, upstream: Upstream) -> None:
    """The upstream echoes every message: what went each way after the 101
    is counted, byte for byte."""
    message = b"m" * 300_000
    rounds = 4
    with edge_for(tmp_path, upstream.url, config=WS_CONFIG) as edge:
        client = WSConnection(ConnectionType.CLIENT)
        sent = payload = 0
        received = b""
        with socket.create_connection(("127.0.0.1", edge.port), timeout=5) as s:
            s.sendall(client.send(ws.Request(host="app.test", target="/ws")))
            while payload < rounds * len(message):
                data = s.recv(65536)
                assert data
                received += data
                client.receive_data(data)
                for event in client.events():
                    if isinstance(event, ws.AcceptConnection):
                        for _ in range(rounds):
                            out = client.send(ws.Message(data=message))
                            sent += len(out)
                            s.sendall(out)
                    elif isinstance(event, ws.BytesMessage):
                        payload += len(event.data)
            out = client.send(ws.CloseConnection(code=1000))
            sent += len(out)
            s.sendall(out)
            while data := s.recv(65536):
                received += data
        edge.stop()
        lines = [json.loads(line) for line in edge.access_log.read_text().splitlines()]
    (entry,) = [e for e in lines if e.get("status") == 101]
    head = received.index(b"\r\n\r\n") + 4  # the edge's 101; then relayed bytes
    assert entry["bytes_in"] == sent > rounds * len(message)
    assert entry["bytes_out"] == len(received) - head > rounds * len(message)


FAILING_POLICY = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints:
  - name: app
    hostname: app.test
    upstream: {upstream}
    traffic_policy:
      on_http_request:
        - name: breaks at run time
          expressions:
            - "int(req.url.query) > 1"
          actions:
            - type: deny
events: off
"""


def test_a_policy_failure_answers_in_the_same_format(tmp_path: Path) -> None:
    """The engine's fail-closed 500 uses the edge's one error format too."""
    with raw_upstream(_switcher) as up, edge_for(tmp_path, up.url, config=FAILING_POLICY) as edge:
        text = get(edge.port, "/?not-a-number")
        rid = (header(text, b"edgeward-request-id") or b"").decode()
        assert status_of(text) == 500
        assert header(text, b"content-type") == b"text/plain; charset=utf-8"
        assert (
            body_of(text)
            == (
                f"500 the traffic policy failed\nerror: ERR_EDGEWARD_2254\nrequest_id: {rid}\n"
            ).encode()
        )
        answer = get(edge.port, "/?x", extra="Accept: application/json\r\n")
        error = json.loads(body_of(answer))["error"]
        assert error["code"] == "ERR_EDGEWARD_2254" and error["status"] == 500
        assert error["request_id"] == (header(answer, b"edgeward-request-id") or b"").decode()
        assert up.lines == []
