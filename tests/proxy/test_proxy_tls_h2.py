"""TLS (SNI, ALPN, mTLS) and HTTP/2 (TLS and h2c) through the edge, with
curl, h2load and a raw h2 client."""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import pytest
from proxy_support import Edge, Upstream, curl, start_edge

CONFIG = """
listeners:
  - name: tls
    address: 127.0.0.1:{port_tls}
    tls:
      certificates:
        - {{cert: {app}, key: {app_key}}}
        - {{cert: {other}, key: {other_key}}}
        - {{cert: {wild}, key: {wild_key}}}
  - name: mtls
    address: 127.0.0.1:{port_mtls}
    tls:
      certificates:
        - {{cert: {app}, key: {app_key}}}
      client_ca: {client_ca}
  - name: web
    address: 127.0.0.1:{port_web}
endpoints:
  - name: app
    hostname: app.test
    upstream: {upstream}
  - name: other
    hostname: other.test
    upstream: {upstream}
  - name: gated
    hostname: gated.wild.test
    listeners: [tls]
    upstream: {upstream}
    traffic_policy:
      on_tcp_connect:
        - actions: [{{type: restrict-ips, config: {{allow: [10.0.0.0/8]}}}}]
  - name: via-tls
    hostname: via-tls.test
    listeners: [web]
    upstream: https://127.0.0.1:{port_tls}
    upstream_tls: {{ca: {ca}, server_name: app.test}}
    host_header: app.test
  - name: wrong-name
    hostname: wrong-name.test
    listeners: [web]
    upstream: https://127.0.0.1:{port_tls}
    upstream_tls: {{ca: {ca}, server_name: nobody.test}}
    host_header: app.test
limits:
  h2_max_concurrent_streams: 20
  h2_max_resets: 50
timeouts:
  client_send: 1
"""


@pytest.fixture(scope="module")
def edge(
    tmp_path_factory: pytest.TempPathFactory, upstream: Upstream, certs: dict[str, Path]
) -> Iterator[Edge]:
    values = {k.replace("-", "_"): str(v) for k, v in certs.items()}
    e = start_edge(
        tmp_path_factory.mktemp("tls"),
        CONFIG,
        ["tls", "mtls", "web"],
        upstream=upstream.url,
        **values,
    )
    yield e
    e.stop()


def tls_args(
    edge: Edge, certs: dict[str, Path], listener: str = "tls", host: str = "app.test"
) -> list[str]:
    port = edge.ports[listener]
    return ["--resolve", f"{host}:{port}:127.0.0.1", "--cacert", str(certs["ca"])]


def test_https_http2_via_alpn(edge: Edge, certs: dict[str, Path]) -> None:
    out = curl(
        *tls_args(edge, certs),
        "--http2",
        "-w",
        "\n%{http_version}",
        f"https://app.test:{edge.ports['tls']}/hello",
    )
    assert out.stdout == "hello\n\n2", out.stderr


def test_https_http1_when_client_offers_only_http1(edge: Edge, certs: dict[str, Path]) -> None:
    out = curl(
        *tls_args(edge, certs),
        "--http1.1",
        "-w",
        "\n%{http_version}",
        f"https://app.test:{edge.ports['tls']}/headers",
    )
    body, _, version = out.stdout.rpartition("\n")
    assert version == "1.1"
    got = dict(json.loads(body)["headers"])
    assert got["x-forwarded-proto"] == "https"


def test_h2c_prior_knowledge(edge: Edge) -> None:
    out = curl(
        "--http2-prior-knowledge",
        "-H",
        "Host: app.test",
        "-w",
        "\n%{http_version}",
        f"http://127.0.0.1:{edge.ports['web']}/hello",
    )
    assert out.stdout == "hello\n\n2", out.stderr


def _peer_names(port: int, server_name: str, ca: Path) -> list[str]:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = False
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        ctx.wrap_socket(raw, server_hostname=server_name) as s,
    ):
        cert = s.getpeercert()
    return [v for k, v in cert["subjectAltName"] if k == "DNS"]


@pytest.mark.parametrize(
    ("sni", "expected"),
    [
        ("app.test", "app.test"),
        ("other.test", "other.test"),
        ("x.wild.test", "*.wild.test"),
        ("unknown.test", "app.test"),
    ],
)
def test_sni_selects_the_certificate(
    edge: Edge, certs: dict[str, Path], sni: str, expected: str
) -> None:
    assert _peer_names(edge.ports["tls"], sni, certs["ca"]) == [expected]


def test_sni_runs_the_endpoint_on_tcp_connect_before_any_request(
    edge: Edge, certs: dict[str, Path]
) -> None:
    """The SNI names the endpoint: its on_tcp_connect refuses 127.0.0.1 right
    after the handshake, before the client sends a request."""
    ctx = ssl.create_default_context(cafile=str(certs["ca"]))
    with (
        socket.create_connection(("127.0.0.1", edge.ports["tls"]), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="gated.wild.test") as s,
    ):
        try:
            first = s.recv(1)  # a timeout here means the edge waited for a request
        except (ConnectionResetError, ssl.SSLError):
            first = b""
        assert first == b""
    assert _peer_names(edge.ports["tls"], "app.test", certs["ca"]) == ["app.test"]


def test_mtls_accepts_a_client_certificate_from_the_ca(edge: Edge, certs: dict[str, Path]) -> None:
    out = curl(
        *tls_args(edge, certs, "mtls"),
        "--cert",
        str(certs["client"]),
        f"https://app.test:{edge.ports['mtls']}/hello",
    )
    assert out.stdout == "hello\n", out.stderr


@pytest.mark.parametrize("client", [None, "stranger"])
def test_mtls_rejects_missing_or_foreign_certificates(
    edge: Edge, certs: dict[str, Path], client: str | None
) -> None:
    extra = ["--cert", str(certs[client])] if client else []
    out = curl(
        *tls_args(edge, certs, "mtls"), *extra, f"https://app.test:{edge.ports['mtls']}/hello"
    )
    assert out.returncode != 0
    assert out.stdout == ""


def test_h2_upload_and_download_with_flow_control(
    edge: Edge, certs: dict[str, Path], tmp_path: Path
) -> None:
    data = hashlib.sha256(b"seed").digest() * (20 * 1024 * 1024 // 32)  # 20 MiB
    src = tmp_path / "up.bin"
    src.write_bytes(data)
    url = f"https://app.test:{edge.ports['tls']}"
    out = curl(*tls_args(edge, certs), "--http2", "--data-binary", f"@{src}", f"{url}/count")
    assert json.loads(out.stdout) == {
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    out = curl(
        *tls_args(edge, certs),
        "--http2",
        "-o",
        "/dev/null",
        "-w",
        "%{size_download} %{http_version}",
        f"{url}/big?n=20000000",
    )
    assert out.stdout == "20000000 2"


def test_h2load_smoke(edge: Edge) -> None:
    out = subprocess.run(
        [
            "h2load",
            "-n",
            "2000",
            "-c",
            "4",
            "-m",
            "10",
            "-H",
            ":authority: app.test",
            f"http://127.0.0.1:{edge.ports['web']}/hello",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "2000 succeeded, 0 failed, 0 errored" in out.stdout, out.stdout


def _h2_client(
    port: int,
) -> tuple[socket.socket, h2.connection.H2Connection, list[h2.events.Event]]:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    s.sendall(conn.data_to_send())
    events: list[h2.events.Event] = []
    events += conn.receive_data(s.recv(65536))
    s.sendall(conn.data_to_send())
    return s, conn, events


def test_server_advertises_the_stream_limit(edge: Edge) -> None:
    s, _, events = _h2_client(edge.ports["web"])
    with s:
        settings = [e for e in events if isinstance(e, h2.events.RemoteSettingsChanged)]
        assert (
            settings[0].changed_settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS].new_value
            == 20
        )


def test_rapid_reset_flood_is_cut_off(edge: Edge) -> None:
    s, conn, _ = _h2_client(edge.ports["web"])
    headers = [
        (":method", "GET"),
        (":path", "/slow?s=1"),
        (":authority", "app.test"),
        (":scheme", "http"),
    ]
    goaway = None
    with s:
        for _ in range(200):
            sid = conn.get_next_available_stream_id()
            conn.send_headers(sid, headers, end_stream=True)
            conn.reset_stream(sid)
            try:
                s.sendall(conn.data_to_send())
            except OSError:
                break
        try:
            while goaway is None:
                data = s.recv(65536)
                if not data:
                    break
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ConnectionTerminated):
                        goaway = event
        except OSError:
            pass
    assert goaway is not None
    assert goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM


def test_https_upstream_is_verified(edge: Edge) -> None:
    """The edge's own TLS listener serves as an HTTPS upstream."""
    url = f"http://127.0.0.1:{edge.ports['web']}/hello"
    out = curl("-H", "Host: via-tls.test", url)
    assert out.stdout == "hello\n", out.stderr
    out = curl("-i", "-H", "Host: wrong-name.test", url)
    assert out.stdout.startswith("HTTP/1.1 502")
    assert "edgeward-error: ERR_EDGEWARD_3009" in out.stdout


def _pump(s: socket.socket, conn: h2.connection.H2Connection) -> list[h2.events.Event]:
    """Read what the edge sent (window updates, responses) and answer it."""
    try:
        data = s.recv(65536)
    except TimeoutError:
        raise AssertionError("the edge sent nothing: flow control window never reopened") from None
    assert data, "the edge closed the connection"
    events = conn.receive_data(data)
    s.sendall(conn.data_to_send())
    return events


def _send_body(s: socket.socket, conn: h2.connection.H2Connection, sid: int, size: int) -> None:
    while size:
        n = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size, size)
        if n == 0:
            s.sendall(conn.data_to_send())
            _pump(s, conn)
            continue
        conn.send_data(sid, b"x" * n)
        size -= n


def test_reset_uploads_give_their_window_back(edge: Edge) -> None:
    """Body bytes of streams the client resets are returned to the
    connection window (4 MiB): 25 x 200 KiB of abandoned uploads later, a
    new upload still gets through."""
    s, conn, _ = _h2_client(edge.ports["web"])
    s.settimeout(5)

    def post(path: str) -> int:
        sid = conn.get_next_available_stream_id()
        conn.send_headers(
            sid,
            [(":method", "POST"), (":path", path), (":authority", "app.test"), (":scheme", "http")],
        )
        return sid

    with s:
        for _ in range(25):
            sid = post("/slow?s=2")
            _send_body(s, conn, sid, 200 * 1024)
            conn.reset_stream(sid)
            s.sendall(conn.data_to_send())  # headers, body and reset in one go
        sid = post("/count")
        _send_body(s, conn, sid, 300 * 1024)
        conn.end_stream(sid)
        s.sendall(conn.data_to_send())
        body = b""
        while True:
            events = _pump(s, conn)
            body += b"".join(
                e.data
                for e in events
                if isinstance(e, h2.events.DataReceived) and e.stream_id == sid
            )
            if any(isinstance(e, h2.events.StreamEnded) and e.stream_id == sid for e in events):
                break
    assert json.loads(body)["bytes"] == 300 * 1024


def _big_downloads(port: int, window: int | None) -> tuple[int, list[h2.events.Event]]:
    """Three 100 MB downloads by a client that then reads nothing for 3 s
    (`client_send: 1`); with `window`, it grants that much up front."""
    size = 100_000_000
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    if window:
        conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        conn.increment_flow_control_window(window - 65535)
    for _ in range(3):
        conn.send_headers(
            conn.get_next_available_stream_id(),
            [(":method", "GET"), (":path", f"/big?n={size}"), (":authority", "app.test"),
             (":scheme", "http")],
            end_stream=True,
        )  # fmt: skip
    total, events = 0, []
    with s:
        s.sendall(conn.data_to_send())
        time.sleep(3)
        try:
            while chunk := s.recv(1 << 20):
                total += len(chunk)
                events += conn.receive_data(chunk)
                if sum(isinstance(e, h2.events.StreamReset) for e in events) == 3:
                    break
        except ConnectionResetError:
            pass
    assert total < size
    return total, events


def test_client_that_stops_reading_is_dropped(edge: Edge) -> None:
    """It opened every window, then read nothing: the writer blocks, the
    streams stop at the high-water mark, and after `client_send` the
    connection is reset. Nothing is buffered without bound."""
    _big_downloads(edge.ports["web"], 2**31 - 1)


def test_streams_without_send_window_are_reset(edge: Edge) -> None:
    """The client never opens its 64 KiB windows again: after `client_send`
    each stream is reset, which frees its upstream connection."""
    total, events = _big_downloads(edge.ports["web"], None)
    resets = [e for e in events if isinstance(e, h2.events.StreamReset)]
    assert len(resets) == 3
    assert total < 4 * 65535
