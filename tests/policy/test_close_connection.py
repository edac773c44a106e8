from __future__ import annotations

from pathlib import Path

import pytest

from .e2e import BACKENDS, events, running_edge, serve
from .helpers import load, load_error, one, request


def test_close_connection_in_request_phase() -> None:
    h = load(
        """
        on_http_request:
          - expressions: ["req.method == 'TRACE'"]
            actions: [{type: close-connection}]
        """
    )
    assert request(h, method="TRACE").closed
    assert not request(h).closed
    assert [e.verdict for e in h.events] == ["close"]


def test_close_connection_on_tcp_connect() -> None:
    h = load(one("close-connection", phase="on_tcp_connect"))
    assert request(h).tcp_closed


def test_close_connection_takes_no_config() -> None:
    err = load_error(one("close-connection", "x: 1", phase="on_tcp_connect"))
    assert "unknown field 'x'" in str(err)


# --- end to end ---------------------------------------------------------------


def _h2_exchange(port: int, paths: list[str]) -> tuple[dict[int, int], bool]:
    """Send each path on its own stream of one h2c connection, one after
    the other; the statuses answered by stream id, and whether the edge
    ended the connection (GOAWAY or EOF)."""
    import socket

    import h2.config
    import h2.connection
    import h2.events

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    statuses: dict[int, int] = {}
    ended = False
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(conn.data_to_send())
        for path in paths:
            stream = conn.get_next_available_stream_id()
            headers = [
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", "127.0.0.1"),
                (":path", path),
            ]
            try:
                conn.send_headers(stream, headers, end_stream=True)
                sock.sendall(conn.data_to_send())
            except (OSError, h2.exceptions.ProtocolError):
                return statuses, True
            done = False
            while not done and not ended:
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    ended = True
                    break
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived):
                        statuses[event.stream_id] = int(dict(event.headers)[b":status"])
                    elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                        done = event.stream_id == stream
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        ended = True
                sock.sendall(conn.data_to_send())
            if ended:
                break
    return statuses, ended


@pytest.mark.parametrize("backend", BACKENDS)
def test_close_connection_closes_the_whole_http2_connection(tmp_path: Path, backend: str) -> None:
    # §3.3: the client connection is closed; an HTTP/2 client sees the
    # connection end (not one stream reset), so no other request of that
    # connection is answered.
    policy = """
on_http_request:
  - expressions: ["req.url.path == '/close'"]
    actions: [{type: close-connection}]
"""
    with (
        serve({"/ok": lambda h: (200, [], b"ok")}) as up,
        running_edge(tmp_path, policy, up.url, backend) as edge,
    ):
        assert _h2_exchange(edge.port, ["/ok", "/ok"]) == ({1: 200, 3: 200}, False)
        statuses, ended = _h2_exchange(edge.port, ["/ok", "/close", "/ok"])
        assert statuses == {1: 200} and ended
        assert up.hits == {"/ok": 3}


def _http1_keepalive(port: int, paths: list[str]) -> list[bytes]:
    """Each path as a GET on one HTTP/1.1 connection, in turn; what came back
    for each (b"" once the edge has closed the connection)."""
    import socket

    answers = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for path in paths:
            try:
                sock.sendall(f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n".encode())
                data = b""
                while not (b"\r\n\r\n" in data and data.endswith(b"ok")):
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except ConnectionResetError:
                data = b""
            answers.append(data)
            if not data:
                break
    return answers


@pytest.mark.parametrize("backend", BACKENDS)
def test_close_connection_over_http1_answers_nothing(tmp_path: Path, backend: str) -> None:
    # §3.3: closes the client connection immediately: not a byte of an
    # answer, the upstream never asked, the connection not reused.
    policy = """
on_http_request:
  - expressions: ["req.url.path == '/close'"]
    actions: [{type: close-connection}]
"""
    with (
        serve({"/ok": lambda h: (200, [], b"ok")}) as up,
        running_edge(tmp_path, policy, up.url, backend) as edge,
    ):
        first, closed = _http1_keepalive(edge.port, ["/ok", "/close", "/ok"])
        assert first.startswith(b"HTTP/1.1 200") and closed == b""
        assert up.hits == {"/ok": 1}
        verdicts = [(e.get("action"), e.get("verdict")) for e in events(edge)]
        assert ("close-connection", "close") in verdicts


LISTENER_CONFIG = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
    traffic_policy_file: {listener}
endpoints:
  - name: app
    hostname: 127.0.0.1
    upstream: {upstream}
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_close_connection_on_tcp_connect_before_any_byte(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from tests.proxy.proxy_support import start_edge

    listener = tmp_path / "listener.yml"
    listener.write_text(
        "on_tcp_connect:\n  - name: closed\n    actions: [{type: close-connection}]\n"
    )
    monkeypatch.setenv("EDGEWARD_BACKEND", backend)
    with serve({"/ok": lambda h: (200, [], b"ok")}) as up:
        edge = start_edge(tmp_path, LISTENER_CONFIG, upstream=up.url, listener=listener)
        try:
            with socket.create_connection(("127.0.0.1", edge.port), timeout=5) as sock:
                try:
                    sock.sendall(b"GET /ok HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
                    answer = sock.recv(65536)
                except (ConnectionResetError, BrokenPipeError):
                    answer = b""
            assert answer == b""
            assert up.hits == {}
            closes = [e for e in events(edge) if e.get("action") == "close-connection"]
            assert closes and {(e["phase"], e["rule"]) for e in closes} == {
                ("on_tcp_connect", "closed")
            }
        finally:
            edge.stop()
