"""`proxy/fetch.py`, the `Fetch` effect's client, against raw sockets on
127.0.0.1: what it sends as Host, and that a failed TLS handshake does not
leak its socket."""

from __future__ import annotations

import gc
import socket
import threading
import warnings

import trio

from edgeward.hooks import Fetch
from edgeward.proxy.fetch import Fetcher


def _serve_once(answer: bytes) -> tuple[int, list[bytes]]:
    """A one-connection server: records what it got, answers `answer`."""
    server = socket.create_server(("127.0.0.1", 0))
    got: list[bytes] = []

    def run() -> None:
        conn, _ = server.accept()
        with conn, server:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            got.append(data)
            conn.sendall(answer)

    threading.Thread(target=run, daemon=True).start()
    return server.getsockname()[1], got


def test_userinfo_never_goes_into_the_host_header() -> None:
    port, got = _serve_once(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
    result = trio.run(Fetcher(), Fetch(f"http://alice:s3cret@127.0.0.1:{port}/jwks?x=1"))
    assert (result.status, result.body) == (200, b"ok")
    (request,) = got
    assert request.startswith(b"GET /jwks?x=1 HTTP/1.1\r\n")
    assert b"host: 127.0.0.1:%d\r\n" % port in request
    assert b"alice" not in request and b"s3cret" not in request


def test_a_failed_tls_handshake_closes_the_socket() -> None:
    """The server answers the ClientHello with plain text: the handshake
    fails, and the socket must be closed then, not left to the collector
    (which would warn about an unclosed socket)."""
    port, _ = _serve_once(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = trio.run(Fetcher(), Fetch(f"https://127.0.0.1:{port}/", timeout_s=5))
        gc.collect()
    assert result.status == 0 and result.error
    unclosed = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert unclosed == [], [str(w.message) for w in unclosed]
