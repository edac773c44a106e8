from __future__ import annotations

from pathlib import Path

import pytest

from .e2e import BACKENDS, running_edge, serve
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
