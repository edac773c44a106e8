"""Lifecycle of `edgeward serve`: graceful drain on SIGTERM, atomic reload
on SIGHUP (under load, and a broken config rejected), `--workers`."""

from __future__ import annotations

import contextlib
import http.client
import json
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import h2.config
import h2.connection
import httpx
import pytest
from hyperframe.frame import DataFrame, Frame, GoAwayFrame
from proxy_support import Edge, Upstream, start_edge

CONFIG = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints:
  - name: app
    hostname: app.test
    upstream: {upstream}
    host_header: {host_header}
timeouts:
  drain: {drain}
"""


TWO_EVENTS = b"id: 0\ndata: event 0\n\nid: 1\ndata: event 1\n\n"  # /sse?n=2


def _edge(
    tmp_path: Path, upstream: Upstream, *, drain: float = 10, args: tuple[str, ...] = ()
) -> Edge:
    return start_edge(
        tmp_path, CONFIG, upstream=upstream.url, host_header="preserve", drain=drain, args=args
    )


def test_sigterm_finishes_in_flight_requests_then_exits(tmp_path: Path, upstream: Upstream) -> None:
    # The signal comes once the response head has arrived (the exchange is
    # certainly in flight); the rest of the body still arrives, new
    # connections are refused meanwhile, and the edge exits 0.
    edge = _edge(tmp_path, upstream)
    url = edge.url("/sse?n=2&s=1.5")
    with httpx.stream("GET", url, headers={"host": "app.test"}, timeout=20) as response:
        chunks = response.iter_bytes()
        first = next(chunks)
        edge.signal(signal.SIGTERM)
        assert _wait_for(lambda: not _accepts(edge.port))
        body = first + b"".join(chunks)
    assert response.status_code == 200
    assert body == TWO_EVENTS
    assert edge.proc.wait(10) == 0


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_drain_timeout_bounds_the_shutdown(tmp_path: Path, upstream: Upstream) -> None:
    # The exchange in flight would take an hour: only the drain timeout
    # (0.5 s) lets the edge exit, and the client's body is cut short. The
    # signal is sent once the response head has arrived, so the exchange is
    # certainly in flight (never after a sleep).
    edge = _edge(tmp_path, upstream, drain=0.5)
    url = edge.url("/sse?n=2&s=3600")
    with httpx.stream("GET", url, headers={"host": "app.test"}, timeout=20) as response:
        assert response.status_code == 200
        chunks = response.iter_raw()
        assert b"event 0" in next(chunks)
        edge.signal(signal.SIGTERM)
        assert edge.proc.wait(10) == 0
        with pytest.raises(httpx.RemoteProtocolError):
            for _ in chunks:
                pass
    assert "drain timeout, closing 1 connections" in edge.log_text()


def test_h2_connection_gets_goaway_and_its_stream_finishes(
    tmp_path: Path, upstream: Upstream
) -> None:
    """Read raw frames: h2's own client refuses frames after a GOAWAY, which
    is exactly what a graceful GOAWAY is followed by."""
    edge = _edge(tmp_path, upstream)
    s = socket.create_connection(("127.0.0.1", edge.port), timeout=5)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(
        1,
        [
            (":method", "GET"),
            (":path", "/sse?n=2&s=1.5"),
            (":authority", "app.test"),
            (":scheme", "http"),
        ],
        end_stream=True,
    )
    s.sendall(conn.data_to_send())
    frames: list[Frame] = []
    buffer = b""
    signalled = False
    with s:
        while True:
            data = s.recv(65536)
            if not data:
                break
            buffer += data
            while len(buffer) >= 9:
                frame, length = Frame.parse_frame_header(memoryview(buffer[:9]))
                if len(buffer) < 9 + length:
                    break
                frame.parse_body(memoryview(buffer[9 : 9 + length]))
                buffer = buffer[9 + length :]
                frames.append(frame)
            if not signalled and any(isinstance(f, DataFrame) and f.data for f in frames):
                edge.signal(signal.SIGTERM)  # the stream is in flight: its first event came
                signalled = True
    data_frames = [f for f in frames if isinstance(f, DataFrame) and f.stream_id == 1]
    goaway = next(f for f in frames if isinstance(f, GoAwayFrame))
    assert goaway.error_code == 0 and goaway.last_stream_id == 1
    # the graceful GOAWAY comes at once, before the stream's last event
    assert frames.index(goaway) < frames.index(next(f for f in data_frames if b"event 1" in f.data))
    assert b"".join(f.data for f in data_frames) == TWO_EVENTS
    assert edge.proc.wait(10) == 0


def test_sighup_reload_under_load_loses_no_request(tmp_path: Path, upstream: Upstream) -> None:
    edge = _edge(tmp_path, upstream)
    failures: list[str] = []
    seen_hosts: list[str] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            with httpx.Client(timeout=10) as c:  # a new connection every 7 requests
                for _ in range(7):
                    try:
                        r = c.get(edge.url("/headers"), headers={"host": "app.test"})
                        if r.status_code != 200:
                            failures.append(f"status {r.status_code}")
                        else:
                            seen_hosts.append(dict(r.json()["headers"])["host"])
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        # Each step waits for what shows the previous one took effect (not
        # for a time: a loaded machine is slow, not wrong).
        assert _wait_for(lambda: len(seen_hosts) > 0)
        edge.config.write_text(
            edge.config.read_text().replace(
                "host_header: preserve", "host_header: reloaded.example"
            )
        )
        edge.signal(signal.SIGHUP)
        assert _wait_for(lambda: "reloaded.example" in seen_hosts)
        good = edge.config.read_text()
        edge.config.write_text(good + "\nunknown_key: true\n")
        edge.signal(signal.SIGHUP)
        assert _wait_for(lambda: "reload rejected" in edge.log_text())
        served = len(seen_hosts)
        assert _wait_for(lambda: len(seen_hosts) > served + 10)  # still serving
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    assert failures == []
    assert seen_hosts[0] == "app.test"
    assert seen_hosts[-1] == "reloaded.example", (
        "the broken config must not have replaced the good one"
    )
    log = edge.log_text()
    assert "reload rejected" in log and "unknown_key" in log
    assert edge.stop() == 0


def test_open_keep_alive_connections_take_a_reload_at_their_next_request(
    tmp_path: Path, upstream: Upstream
) -> None:
    """A reload (or a change made through the admin API, which installs a
    generation the same way) applies to the next request of a connection
    already open, HTTP/1.1 and HTTP/2 alike, not only to new connections:
    a busy keep-alive client would otherwise keep the old rules forever."""
    edge = _edge(tmp_path, upstream)
    one = http.client.HTTPConnection("127.0.0.1", edge.port, timeout=20)
    two = httpx.Client(http1=False, http2=True, timeout=20)  # h2c, one connection

    def hosts() -> tuple[str, str]:
        one.request("GET", "/headers", headers={"Host": "app.test"})
        seen = json.loads(one.getresponse().read())
        answer = two.get(edge.url("/headers"), headers={"host": "app.test"})
        assert answer.http_version == "HTTP/2"
        return dict(seen["headers"])["host"], dict(answer.json()["headers"])["host"]

    with contextlib.closing(one), two:
        assert hosts() == ("app.test", "app.test")
        sock = one.sock
        edge.config.write_text(
            edge.config.read_text().replace("host_header: preserve", "host_header: next.example")
        )
        edge.signal(signal.SIGHUP)
        assert _wait_for(lambda: hosts() == ("next.example", "next.example"))
        assert one.sock is sock  # the same HTTP/1.1 connection
    assert edge.stop() == 0


GATED = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
{listener_policy}
endpoints:
  - name: app
    hostname: app.test
    upstream: {upstream}
{endpoint_policy}
"""
ON_TCP_CONNECT = """    traffic_policy:
      on_tcp_connect:
        - actions: [{{type: restrict-ips, config: {{allow: [{allow}]}}}}]"""


@pytest.mark.parametrize("level", ["endpoint", "listener"])
def test_a_reload_that_tightens_on_tcp_connect_closes_open_connections_it_refuses(
    tmp_path: Path, upstream: Upstream, level: str
) -> None:
    """on_tcp_connect runs once per connection, and again when a reload
    changed the policy that has it: an allow list that no longer admits a
    client ends that client's open keep-alive connections (HTTP/1.1 and
    h2c) at their next request, not only its new ones."""
    allowed = ON_TCP_CONNECT.format(allow="127.0.0.0/8")
    policies = {"listener_policy": "", "endpoint_policy": "", f"{level}_policy": allowed}
    edge = start_edge(tmp_path, GATED, upstream=upstream.url, **policies)
    one = http.client.HTTPConnection("127.0.0.1", edge.port, timeout=20)
    two = httpx.Client(http1=False, http2=True, timeout=20)  # h2c, one connection
    with contextlib.closing(one), two:
        one.request("GET", "/headers", headers={"Host": "app.test"})
        assert one.getresponse().read() and one.sock is not None
        answer = two.get(edge.url("/headers"), headers={"host": "app.test"})
        assert answer.status_code == 200 and answer.http_version == "HTTP/2"

        refused = ON_TCP_CONNECT.format(allow="10.0.0.0/8")
        edge.config.write_text(edge.config.read_text().replace(allowed, refused))
        edge.signal(signal.SIGHUP)
        assert _wait_for(lambda: "reloaded" in edge.log_text())

        one.request("GET", "/headers", headers={"Host": "app.test"})
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            one.getresponse()
        with pytest.raises(httpx.TransportError):
            two.get(edge.url("/headers"), headers={"host": "app.test"})
    assert edge.stop() == 0


def _wait_for(predicate: Callable[[], bool], timeout: float = 30) -> bool:
    """Poll until `predicate` holds; `timeout` only bounds a test that
    would otherwise hang (a loaded machine is slow, not wrong)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_reload_moves_the_access_log_and_a_full_disk_stops_nothing(
    tmp_path: Path, upstream: Upstream
) -> None:
    edge = _edge(tmp_path, upstream)
    base = edge.config.read_text()
    first, second = tmp_path / "first.log", tmp_path / "second.log"

    def reload_with(access_log: str) -> None:
        edge.config.write_text(base + f"\naccess_log: {access_log}\n")
        edge.signal(signal.SIGHUP)
        assert _wait_for(lambda: edge.log_text().count("reloaded") > reloads)

    def requests(n: int) -> None:
        with httpx.Client(timeout=5) as c:
            for _ in range(n):
                assert c.get(edge.url("/hello"), headers={"host": "app.test"}).status_code == 200

    reloads = 0
    reload_with(str(first))
    requests(3)
    assert _wait_for(lambda: _lines(first) == 3)  # flushed within a second

    reloads = 1
    reload_with(str(second))
    requests(2)
    assert _wait_for(lambda: _lines(second) == 2)
    assert _lines(first) == 3

    reloads = 2
    reload_with("/dev/full")
    requests(5)
    failed = "access log: cannot write to /dev/full"
    assert _wait_for(lambda: failed in edge.log_text())  # a flush failed
    requests(2)  # the edge still answers
    time.sleep(1.2)  # another flush fails, silently
    assert edge.log_text().count(failed) == 1
    assert "Traceback" not in edge.log_text()
    assert edge.stop() == 0


def test_workers_share_the_port(tmp_path: Path, upstream: Upstream) -> None:
    edge = _edge(tmp_path, upstream, args=("--workers", "2"))
    try:
        children = _children(edge.proc.pid)
        assert len(children) == 2
        for _ in range(20):
            r = httpx.get(
                edge.url("/hello"), headers={"host": "app.test", "connection": "close"}, timeout=5
            )
            assert r.status_code == 200
    finally:
        assert edge.stop() == 0
    assert all(not Path(f"/proc/{pid}").exists() or _is_zombie(pid) for pid in children)


def _children(pid: int) -> list[int]:
    deadline = time.monotonic() + 10
    found: list[int] = []
    while time.monotonic() < deadline:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
        if len(found) >= 2:
            break
        time.sleep(0.1)
    return found


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
