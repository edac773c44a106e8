"""Large bodies stream through with bounded memory; WebSocket upgrade is
passed through as bytes both ways."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
from collections.abc import Iterator

import pytest
from proxy_support import Edge, Upstream, curl, start_edge
from wsproto import ConnectionType, WSConnection
from wsproto import events as ws

CONFIG = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints:
  - name: app
    hostname: app.test
    upstream: {upstream}
limits:
  max_body_bytes: 0
"""

SIZE = 200 * 1024 * 1024
RSS_LIMIT_KIB = 120 * 1024  # the interpreter with its modules is ~40 MiB


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[Edge]:
    e = start_edge(tmp_path_factory.mktemp("stream"), CONFIG, upstream=upstream.url)
    yield e
    e.stop()


def test_200mb_upload_streams_with_bounded_memory(edge: Edge) -> None:
    """curl reads /dev/zero through `head`: the body is never on disk or in
    the test's memory either."""
    cmd = (
        f"head -c {SIZE} /dev/zero | curl -sS -H 'Host: app.test' "
        "-H 'Content-Type: application/octet-stream' -H 'Transfer-Encoding: chunked' "
        f"--data-binary @- http://127.0.0.1:{edge.port}/count"
    )
    out = subprocess.run(cmd, shell=True, check=False, capture_output=True, text=True, timeout=120)
    got = json.loads(out.stdout)
    assert got["bytes"] == SIZE
    assert got["sha256"] == _zeros_sha256(SIZE)
    assert edge.rss_peak_kib() < RSS_LIMIT_KIB


def test_200mb_download_streams_with_bounded_memory(edge: Edge) -> None:
    out = curl(
        "-H",
        "Host: app.test",
        "-o",
        "/dev/null",
        "-w",
        "%{size_download}",
        f"http://127.0.0.1:{edge.port}/big?n={SIZE}",
        timeout=120,
    )
    assert out.stdout == str(SIZE)
    assert edge.rss_peak_kib() < RSS_LIMIT_KIB


def _zeros_sha256(n: int) -> str:
    digest = hashlib.sha256()
    block = bytes(1024 * 1024)
    for _ in range(n // len(block)):
        digest.update(block)
    return digest.hexdigest()


def test_websocket_echo_through_the_proxy(edge: Edge) -> None:
    client = WSConnection(ConnectionType.CLIENT)
    with socket.create_connection(("127.0.0.1", edge.port), timeout=5) as s:
        s.sendall(client.send(ws.Request(host="app.test", target="/ws")))
        accepted = False
        received: list[str | bytes] = []
        messages = ["hello", "through", "the edge"]
        sent = False
        while len(received) < len(messages) + 1:
            data = s.recv(65536)
            assert data, "connection closed early"
            client.receive_data(data)
            for event in client.events():
                if isinstance(event, ws.AcceptConnection):
                    accepted = True
                elif isinstance(event, ws.TextMessage | ws.BytesMessage):
                    received.append(event.data)
            if accepted and not sent:
                for m in messages:
                    s.sendall(client.send(ws.Message(data=m)))
                s.sendall(client.send(ws.Message(data=b"\x00\x01binary")))
                sent = True
        assert received == [*messages, b"\x00\x01binary"]
        s.sendall(client.send(ws.CloseConnection(code=1000)))
        closed = False
        while not closed:
            data = s.recv(65536)
            if not data:
                break
            client.receive_data(data)
            closed = any(isinstance(e, ws.CloseConnection) for e in client.events())
