"""The variables through `edgeward serve`, on both backends: IP
intelligence from the edge config (geo, ASN, categories, Tor, blocklists;
the lists reloaded on SIGHUP; empty values when nothing is configured),
the TLS fields of a real mutual-TLS handshake (certificates, JA4 of the
client's ClientHello, session resumption), the parsed User-Agent, and the
connection's byte counters. The upstream echoes the headers the policy
added."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.policy.e2e import BACKENDS, echo_headers, serve
from tests.proxy.proxy_support import Edge, start_edge
from tests.variables.pki import Pki, make_pki
from tests.variables.scenario import USER_AGENTS, write_intelligence

from edgeward import ja4

POLICY = (Path(__file__).resolve().parent / "data" / "e2e-policy.yml").read_text()

CONFIG = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
  - name: mtls
    address: 127.0.0.1:{port_mtls}
    tls:
      certificates:
        - {{cert: {cert}, key: {key}}}
      client_ca: {client_ca}
{intel}
endpoints:
  - name: app
    hostname: localhost
    upstream: {upstream}
    traffic_policy_file: {policy}
"""

INTEL = """
ip_intelligence:
  geo_db: intel/city.mmdb
  asn_db: intel/asn.mmdb
  categories:
    com.example.office: intel/com.example.office.txt
  tor_exit_nodes: intel/proxy.anonymous.tor.txt
  blocklists:
    firehol_level1: intel/blocklist.firehol_level1.txt
"""


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serve({"/": echo_headers, "/tor": echo_headers}) as server:
        yield server.url


def _start(directory: Path, pki: Pki, upstream: str, backend: str, intel: bool) -> Edge:
    directory.mkdir(parents=True, exist_ok=True)
    if intel:
        write_intelligence(directory / "intel")
    cert, key = pki.server.write(directory, "server")
    ca, _ = pki.ca.write(directory, "ca")
    policy = directory / "policy.yml"
    policy.write_text(POLICY)
    text = CONFIG.replace("{intel}", INTEL if intel else "")
    saved = os.environ.get("EDGEWARD_BACKEND")
    os.environ["EDGEWARD_BACKEND"] = backend
    try:
        return start_edge(
            directory,
            text,
            listeners=["web", "mtls"],
            cert=cert,
            key=key,
            client_ca=ca,
            upstream=upstream,
            policy=policy,
        )
    finally:
        if saved is None:
            del os.environ["EDGEWARD_BACKEND"]
        else:
            os.environ["EDGEWARD_BACKEND"] = saved


@pytest.fixture(scope="module", params=BACKENDS)
def edge(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    pki: Pki,
    upstream: str,
) -> Iterator[Edge]:
    directory = tmp_path_factory.mktemp(f"edge-{request.param}")
    edge = _start(directory, pki, upstream, request.param, intel=True)
    try:
        yield edge
    finally:
        edge.stop()


def _seen(response: httpx.Response) -> dict[str, str]:
    """The headers the upstream got (echo_headers)."""
    assert response.status_code == 200, response.text
    return {k: v for k, v in json.loads(response.text)["headers"] if k.startswith("x-")}


def _get(edge: Edge, path: str = "/", **headers: str) -> httpx.Response:
    return httpx.get(
        f"http://127.0.0.1:{edge.ports['web']}{path}",
        headers={"host": "localhost", **headers},
        timeout=10,
    )


def test_ip_intelligence_from_the_edge_config(edge: Edge) -> None:
    seen = _seen(_get(edge))
    assert seen["x-city"] == "San Francisco" and seen["x-country"] == "US"
    assert seen["x-eu"] == "true"  # registered in Germany
    assert seen["x-asn"] == "64500/EXAMPLE-LOOPBACK"
    assert seen["x-categories"].split(",") == [
        "blocklist",
        "blocklist.firehol_level1",
        "com",
        "com.example",
        "com.example.office",
        "proxy",
        "proxy.anonymous",
        "proxy.anonymous.tor",
    ]
    assert seen["x-tor"] == "true" and seen["x-blocklisted"] == "true"
    assert _get(edge, "/tor").status_code == 403


def test_user_agent_names_as_the_docs_use_them(edge: Edge) -> None:
    seen = _seen(_get(edge, **{"user-agent": USER_AGENTS["desktop"]}))
    assert seen["x-ua"] == "Edge|120.0.2210.91|Windows|false|false"
    seen = _seen(_get(edge, **{"user-agent": USER_AGENTS["mobile"]}))
    assert seen["x-ua"] == "Safari|17.2|iOS|true|false"
    firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
    assert _seen(_get(edge, **{"user-agent": firefox}))["x-ua"] == "Firefox|121.0|Linux|false|false"
    assert _seen(_get(edge, **{"user-agent": "curl/8.5.0"}))["x-ua"] == "curl|8.5.0||false|true"


def test_byte_counters_as_of_each_phase(edge: Edge) -> None:
    with httpx.Client(timeout=10) as client:  # one keep-alive connection
        url = f"http://127.0.0.1:{edge.ports['web']}/"
        first = client.get(url, headers={"host": "localhost"})
        second = client.get(url, headers={"host": "localhost", "x-pad": "p" * 1000})
    in_1, out_1 = map(int, first.headers["x-bytes"].split())
    in_2, out_2 = map(int, second.headers["x-bytes"].split())
    # The request phase saw the first request's head; the response phase of
    # the second saw both heads in, and the first response out.
    assert int(_seen(first)["x-bytes-in"]) == in_1 > 0 and out_1 == 0
    assert in_2 > in_1 + 1000 and out_2 >= len(first.content) > 0


def _tls_client(pki: Pki, directory: Path) -> ssl.SSLContext:
    ca, _ = pki.ca.write(directory, "ca-client")
    cert, key = pki.client.write(directory, "client")
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.load_cert_chain(str(cert), str(key))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _tls_get(
    edge: Edge, ctx: ssl.SSLContext, session: ssl.SSLSession | None = None
) -> tuple[dict[str, str], ssl.SSLSession | None, bool]:
    with (
        socket.create_connection(("127.0.0.1", edge.ports["mtls"]), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost", session=session) as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), data[:300]
        if b"chunked" in head.lower():
            body = _unchunk(body)
        seen = {k: v for k, v in json.loads(body)["headers"] if k.startswith("x-")}
        return seen, tls.session, tls.session_reused


def _unchunk(body: bytes) -> bytes:
    out = b""
    while body:
        size, _, rest = body.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            break
        out, body = out + rest[:n], rest[n + 2 :]
    return out


def test_tls_fields_of_a_mutual_tls_connection(edge: Edge, pki: Pki, tmp_path: Path) -> None:
    ctx = _tls_client(pki, tmp_path)
    seen, session, reused = _tls_get(edge, ctx)
    assert not reused and seen["x-resumed"] == "false"
    version, sni, alpn, cipher = seen["x-tls"].split("|")
    assert (version, sni, alpn) == ("1.3", "localhost", "http/1.1")
    assert cipher.startswith("TLS_AES_") or cipher.startswith("TLS_CHACHA20_")
    assert seen["x-client"] == "alice|Example Ltd|spiffe://example.com/alice|c0ffee"
    assert seen["x-server"] == "localhost|Edgeward Test CA|ECDSA-SHA256"
    # JA4 of this client's ClientHello: Python's OpenSSL over TCP, TLS 1.3,
    # with SNI, ALPN http/1.1.
    fingerprint = seen["x-ja4"]
    assert fingerprint.startswith("t13d") and fingerprint[8:10] == "h1", fingerprint
    assert len(fingerprint.split("_")) == 3
    assert seen["x-city"] == "San Francisco"  # the TLS listener has the same data
    # A second connection resuming the session (TLS 1.3 ticket).
    again, _, reused = _tls_get(edge, ctx, session)
    assert reused and again["x-resumed"] == "true"
    assert again["x-ja4"][:4] == "t13d"


def test_ja4_matches_the_client_hello_as_sent(edge: Edge, pki: Pki, tmp_path: Path) -> None:
    """The fingerprint the edge computed equals the one computed here from
    the same ClientHello bytes, captured by a relay in front of the edge."""
    ctx = _tls_client(pki, tmp_path)
    hello = bytearray()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        relay_port = listener.getsockname()[1]

        def relay() -> None:
            conn, _ = listener.accept()
            with conn, socket.create_connection(("127.0.0.1", edge.ports["mtls"])) as up:
                conn.settimeout(10)
                up.settimeout(10)
                first = conn.recv(65536)
                hello.extend(first)
                up.sendall(first)

                def pump(a: socket.socket, b: socket.socket) -> None:
                    try:
                        while data := a.recv(65536):
                            b.sendall(data)
                    except OSError:
                        pass
                    with_shutdown(b)

                t = threading.Thread(target=pump, args=(conn, up), daemon=True)
                t.start()
                pump(up, conn)
                t.join(10)

        thread = threading.Thread(target=relay, daemon=True)
        thread.start()
        with (
            socket.create_connection(("127.0.0.1", relay_port), timeout=10) as raw,
            ctx.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
        thread.join(10)
    body = data.partition(b"\r\n\r\n")[2]
    if b"chunked" in data.partition(b"\r\n\r\n")[0].lower():
        body = _unchunk(body)
    seen = {k: v for k, v in json.loads(body)["headers"] if k.startswith("x-")}
    expected = ja4.ja4_fingerprint(bytes(hello))
    assert expected is not None and seen["x-ja4"] == expected


def with_shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_ip_intelligence_the_values_are_empty(
    backend: str, tmp_path: Path, pki: Pki, upstream: str
) -> None:
    """The public "block Tor" rule does not take the site down when no
    list is configured: the values are empty, never an error."""
    edge = _start(tmp_path, pki, upstream, backend, intel=False)
    try:
        response = _get(edge, "/tor")
        seen = _seen(response)
        assert seen["x-city"] == "" and seen["x-country"] == ""
        assert seen["x-asn"] == "0/" and seen["x-categories"] == ""
        assert seen["x-tor"] == "false" and seen["x-blocklisted"] == "false"
        assert seen["x-tls"] == "|||" and seen["x-client"] == "|||"  # plain HTTP
    finally:
        edge.stop()


def test_lists_are_read_again_on_sighup(tmp_path: Path, pki: Pki, upstream: str) -> None:
    edge = _start(tmp_path, pki, upstream, "rust", intel=True)
    try:
        assert _get(edge, "/tor").status_code == 403
        (tmp_path / "intel" / "proxy.anonymous.tor.txt").write_text("198.51.100.0/24\n")
        edge.signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while "reloaded" not in edge.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        response = _get(edge, "/tor")
        seen = _seen(response)
        assert seen["x-tor"] == "false" and "proxy.anonymous.tor" not in seen["x-categories"]
        assert seen["x-blocklisted"] == "true"
        # A list that no longer reads is refused; the running data stays.
        (tmp_path / "intel" / "proxy.anonymous.tor.txt").write_text("not a cidr\n")
        edge.signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while "reload rejected" not in edge.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "proxy.anonymous.tor.txt:1" in edge.log.read_text()
        assert _seen(_get(edge, "/tor"))["x-tor"] == "false"
    finally:
        edge.stop()
