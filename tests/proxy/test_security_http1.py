"""Security regressions of the HTTP/1.1 data plane, through the running
edge: pool poisoning by an upstream, h2c upgrade smuggling, CONNECT, path
normalisation before the policy, what error bodies tell the public, and the
bytes an upgraded exchange relayed.

Each upstream here is a raw-socket server run by the test (a thread on
127.0.0.1), so it can misbehave byte for byte."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from proxy_support import Edge, raw_request, start_edge

Handler = Callable[[socket.socket, bytes], bool]
"""Answers one request head on the socket; False closes the connection."""


class RawUpstream:
    """An HTTP/1.1 upstream made of raw sockets: each request head is
    given to `handler`; it records every request line it saw."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.lines: list[bytes] = []
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


# --- edge error codes -----------------------------------------------------------------
