"""Operating `edgeward serve`: listeners on descriptors past 1024, a drain
that sleeps instead of spinning, logs that never block the event loop,
reloads that apply upstream settings, startup errors in one line, one
timestamp format and the JSON/console log formats."""

from __future__ import annotations

import json
import logging
import os
import pty
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import trio
import trustme
from proxy_support import EDGEWARD, Edge, Upstream, free_port, start_edge, wait_port

from edgeward import linefile
from edgeward.config import load_config
from edgeward.proxy.server import Server

RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

CONFIG = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints:
  - name: app
    hostname: app.test
    upstream: {upstream}
"""


def _wait_for(predicate: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# --- the accept loop past descriptor 1024 ----------------------------------------------

HIGH_FDS = """
import os, resource, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]  # the listener comes after
from edgeward.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _sockets_of(pid: int) -> list[int]:
    """The process's socket descriptors (one closed while listed is skipped:
    the edge opens and closes descriptors as it starts)."""
    fds = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd).startswith("socket:"):
                fds.append(int(fd.name))
        except FileNotFoundError:
            continue
    return fds


def test_a_listener_past_fd_1024_at_the_connection_limit(
    tmp_path: Path, upstream: Upstream
) -> None:
    """select(2) cannot take descriptors >= 1024: at the limit, the accept
    loop must still see a waiting client and evict an idle one for it."""
    port = free_port()
    config = tmp_path / "edge.yml"
    config.write_text(
        CONFIG.format(port_web=port, upstream=upstream.url) + "limits: {max_connections: 1}\n"
    )
    log = tmp_path / "edge.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", HIGH_FDS, "serve", "--config", str(config)],
            stdout=out,
            stderr=out,
        )
    try:
        wait_port(port, proc=proc)
        fds = _sockets_of(proc.pid)
        assert fds and min(fds) >= 1024
        headers = {"host": "app.test"}
        with httpx.Client(timeout=5) as first, httpx.Client(timeout=5) as second:
            assert first.get(f"http://127.0.0.1:{port}/hello", headers=headers).status_code == 200
            # the first client's connection is idle and holds the only slot
            r = second.get(f"http://127.0.0.1:{port}/hello", headers=headers)
            assert r.status_code == 200
        assert proc.poll() is None, log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    assert "Traceback" not in log.read_text()


# --- the drain does not spin -----------------------------------------------------------


class _Steps(trio.abc.Instrument):
    def __init__(self) -> None:
        self.counting = False
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if self.counting:
            self.steps += 1


def test_the_drain_waits_for_connections_without_spinning(
    tmp_path: Path, upstream: Upstream
) -> None:
    """Count scheduler steps while one request is in flight during the
    drain: waiting on an event that stays set made ~44k per 0.2 s."""
    port = free_port()
    config = tmp_path / "edge.yml"
    config.write_text(CONFIG.format(port_web=port, upstream=upstream.url))
    steps = _Steps()
    answer: list[bytes] = []

    async def client() -> None:
        # a connection that has come and gone: the old drain then waited on
        # the event its close had set, which stayed set
        done = await trio.open_tcp_stream("127.0.0.1", port)
        await done.send_all(b"GET /hello HTTP/1.1\r\nhost: app.test\r\nconnection: close\r\n\r\n")
        while await done.receive_some(65536):
            pass
        await done.aclose()
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"GET /slow?s=1 HTTP/1.1\r\nhost: app.test\r\n\r\n")
        data = b""
        while b"slow\n" not in data:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            data += chunk
        answer.append(data)
        await stream.aclose()

    async def main() -> None:
        server = Server(load_config(config))
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve)
            nursery.start_soon(client)
            await trio.sleep(0.5)  # the slow request is at the upstream now
            steps.counting = True
            server.shutdown()
        steps.counting = False

    trio.run(main, instruments=[steps])
    assert answer and answer[0].startswith(b"HTTP/1.1 200")
    assert steps.steps < 500, f"{steps.steps} task steps while draining one request"


# --- logs never block the event loop ---------------------------------------------------


def test_an_unread_stdout_pipe_does_not_stop_the_edge(tmp_path: Path, upstream: Upstream) -> None:
    """The access log goes to stdout, a pipe nobody reads: far more log
    than the pipe holds must not stop the edge from answering."""
    port = free_port()
    config = tmp_path / "edge.yml"
    config.write_text(CONFIG.format(port_web=port, upstream=upstream.url) + "access_log: true\n")
    log = tmp_path / "edge.log"
    read_end, write_end = os.pipe()
    pipe_size = 65536
    try:
        with log.open("wb") as err:
            proc = subprocess.Popen(
                [*EDGEWARD, "serve", "--config", str(config)], stdout=write_end, stderr=err
            )
        os.close(write_end)
        try:
            wait_port(port, proc=proc)
            path = "/hello?" + "x" * 200  # ~400 bytes per access-log line
            sent = 0
            with httpx.Client(timeout=5) as c:
                while sent < 4 * pipe_size:
                    r = c.get(f"http://127.0.0.1:{port}{path}", headers={"host": "app.test"})
                    assert r.status_code == 200
                    sent += len(path) + 200
            assert proc.poll() is None
        finally:
            proc.kill()  # a blocked writer cannot finish a graceful exit's last flush
            proc.wait(15)
    finally:
        os.close(read_end)
    assert "Traceback" not in log.read_text()


def test_a_stalled_output_drops_records_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Unit level: past `MAX_PENDING` queued records a write is dropped,
    counted, and logged once; nothing blocks."""
    read_end, write_end = os.pipe()
    stalled = os.fdopen(write_end, "w")
    output = linefile.Output("test-pipe", stalled, log=logging.getLogger("edgeward.test"))

    class Text:
        def json(self, record: str) -> str:
            return record

        def console(self, record: str) -> str:
            return record

    try:
        with caplog.at_level(logging.WARNING, logger="edgeward.test"):
            for _ in range(linefile.MAX_PENDING + 5000):
                output.write("y" * 100, Text())
            assert output.dropped >= 5000
            dropping = [r.getMessage() for r in caplog.records]
            assert len(dropping) == 1 and "not keeping up" in dropping[0]
            # the reader comes back: the output catches up and reports the loss
            threading.Thread(target=_read_all, args=(read_end,), daemon=True).start()
            assert output.flush(10)
            output.write("after", Text())
            assert output.flush(10)
        messages = [r.getMessage() for r in caplog.records]
        assert len(messages) == 2 and f"{output.dropped} records dropped" in messages[1]
    finally:
        output.close(wait=1)


def _read_all(fd: int) -> None:
    try:
        while os.read(fd, 1 << 20):
            pass
    except OSError:
        pass


EVENTS_POLICY = """
events: stdout
access_log: true
endpoints:
  - name: app
    hostname: app.test
    upstream: {upstream}
    traffic_policy:
      on_http_request:
        - name: note
          actions: [{{type: log, config: {{metadata: {{n: "1"}}}}}}]
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
"""


def test_access_log_lines_follow_the_events_of_their_request(
    tmp_path: Path, upstream: Upstream
) -> None:
    edge = start_edge(tmp_path, EVENTS_POLICY, upstream=upstream.url)
    try:
        with httpx.Client(timeout=5) as c:
            for _ in range(5):
                r = c.get(edge.url("/hello"), headers={"host": "app.test"})
                assert r.status_code == 200
    finally:
        assert edge.stop() == 0
    records = [json.loads(line) for line in edge.log_text().splitlines() if line.startswith("{")]
    kinds = [
        ("event" if "verdict" in r else "access", r["request_id"])
        for r in records
        if "verdict" in r or "status" in r
    ]
    ids = [rid for kind, rid in kinds if kind == "event"]
    assert len(ids) == 5
    assert kinds == [(kind, rid) for rid in ids for kind in ("event", "access")]


# --- a reload applies upstream settings ------------------------------------------------

POOL_CONFIG = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints:
  - name: app
    hostname: app.test
    upstream: {upstream}
    host_header: preserve
"""


def _reload(edge: Edge, text: str) -> None:
    before = edge.log_text().count("edgeward: reloaded")
    edge.config.write_text(text)
    edge.signal(signal.SIGHUP)
    assert _wait_for(lambda: edge.log_text().count("edgeward: reloaded") > before), edge.log_text()


def _upstream_port(edge: Edge) -> str:
    r = httpx.get(edge.url("/conn"), headers={"host": "app.test"}, timeout=5)
    assert r.status_code == 200
    return r.text


def test_reload_applies_pool_size_and_idle_timeout_and_keeps_warm_connections(
    tmp_path: Path, upstream: Upstream
) -> None:
    edge = start_edge(tmp_path, POOL_CONFIG, upstream=upstream.url)
    try:
        base = edge.config.read_text()
        warm = _upstream_port(edge)
        assert _upstream_port(edge) == warm  # pooled
        _reload(edge, base.replace("host_header: preserve", "host_header: upstream"))
        assert _upstream_port(edge) == warm, "nothing about the upstream changed: stay warm"

        # (not asked right after this reload: on a loaded machine the reload
        # itself may outlast the new 0.5 s, and staying warm is shown above)
        _reload(edge, base + "timeouts: {upstream_idle: 0.5}\n")
        time.sleep(1.5)  # idle past the new timeout (the old one is 30 s)
        fresh = _upstream_port(edge)
        assert fresh != warm

        _reload(edge, base + "limits: {upstream_pool_size: 0}\n")
        ports = {_upstream_port(edge) for _ in range(3)}
        assert len(ports) == 3, "a pool of size 0 keeps no connection"
    finally:
        assert edge.stop() == 0


@pytest.fixture
def tls_upstream() -> Iterator[tuple[int, trustme.CA]]:
    """An HTTPS upstream on 127.0.0.1 whose certificate comes from a CA of
    its own."""
    ca = trustme.CA()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body = b"over tls\n"
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], ca
    server.shutdown()
    server.server_close()


def test_reload_applies_a_rotated_upstream_ca_file(
    tmp_path: Path, tls_upstream: tuple[int, trustme.CA]
) -> None:
    port, right_ca = tls_upstream
    ca_file = tmp_path / "upstream-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_file))  # not the upstream's CA yet
    config = (
        POOL_CONFIG.replace("{upstream}", f"https://127.0.0.1:{port}")
        + "    upstream_tls: {{ca: upstream-ca.pem}}\n"
    )
    edge = start_edge(tmp_path, config)
    try:
        r = httpx.get(edge.url("/"), headers={"host": "app.test"}, timeout=5)
        assert r.status_code == 502 and r.headers["edgeward-error"] == "ERR_EDGEWARD_3009"
        right_ca.cert_pem.write_to_path(str(ca_file))  # rotated in place, same path
        _reload(edge, edge.config.read_text())
        r = httpx.get(edge.url("/"), headers={"host": "app.test"}, timeout=5)
        assert r.status_code == 200 and r.text == "over tls\n"

        ca_file.write_text("not a certificate\n")  # a broken CA file rejects the reload
        edge.signal(signal.SIGHUP)
        assert _wait_for(lambda: "reload rejected" in edge.log_text())
        assert f"endpoint app: upstream CA file {ca_file}: " in edge.log_text()
        r = httpx.get(edge.url("/"), headers={"host": "app.test"}, timeout=5)
        assert r.status_code == 200
    finally:
        assert edge.stop() == 0


# --- startup problems: one line, exit 1 ------------------------------------------------


def _serve(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EDGEWARD, "serve", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _one_line_failure(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_a_port_in_use_is_one_line_naming_the_listener(tmp_path: Path, upstream: Upstream) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "edge.yml"
        config.write_text(CONFIG.format(port_web=port, upstream=upstream.url))
        line = _one_line_failure(_serve(config))
    assert line == (
        f"edgeward serve: listener web: cannot listen on 127.0.0.1:{port}: address already in use"
    )


def test_an_address_not_on_this_host_is_one_line(tmp_path: Path, upstream: Upstream) -> None:
    config = tmp_path / "edge.yml"
    config.write_text(
        CONFIG.format(port_web=8080, upstream=upstream.url).replace("127.0.0.1", "192.0.2.1")
    )
    line = _one_line_failure(_serve(config))
    assert line.startswith("edgeward serve: listener web: cannot listen on 192.0.2.1:8080: ")


def test_an_admin_port_in_use_is_one_line(tmp_path: Path, upstream: Upstream) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "edge.yml"
        config.write_text(
            CONFIG.format(port_web=free_port(), upstream=upstream.url)
            + f"admin: {{address: 127.0.0.1:{port}}}\n"
        )
        line = _one_line_failure(_serve(config))
    assert line == (
        f"edgeward serve: admin listener: cannot listen on 127.0.0.1:{port}: address already in use"
    )


def test_a_key_that_does_not_match_its_certificate_is_one_line(
    tmp_path: Path, upstream: Upstream, certs: dict[str, Path]
) -> None:
    config = tmp_path / "edge.yml"
    config.write_text(
        f"""
listeners:
  - name: secure
    address: 127.0.0.1:{free_port()}
    tls: {{certificates: [{{cert: {certs["app"]}, key: {certs["other-key"]}}}]}}
endpoints:
  - name: app
    hostname: app.test
    upstream: {upstream.url}
"""
    )
    line = _one_line_failure(_serve(config))
    assert line.startswith("edgeward serve: listener secure: cannot load its TLS certificates (")
    assert str(certs["other-key"]) in line


def test_a_bad_upstream_ca_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate\n")
    config = tmp_path / "edge.yml"
    config.write_text(
        CONFIG.format(port_web=free_port(), upstream="https://127.0.0.1:1")
        + "    upstream_tls: {ca: ca.pem}\n"
    )
    line = _one_line_failure(_serve(config))
    assert line.startswith(f"edgeward serve: endpoint app: upstream CA file {tmp_path}/ca.pem: ")


# --- one timestamp format; JSON or console ---------------------------------------------


def test_json_logs_share_one_timestamp_format_and_name_the_builds(
    tmp_path: Path, upstream: Upstream
) -> None:
    edge = start_edge(
        tmp_path,
        EVENTS_POLICY.replace("access_log: true", "access_log: {access_log}"),
        upstream=upstream.url,
    )
    try:
        assert httpx.get(edge.url("/hello"), headers={"host": "app.test"}).status_code == 200
    finally:
        assert edge.stop() == 0
    server_log = [json.loads(line) for line in edge.log_text().splitlines()]
    events = [r for r in server_log if "verdict" in r]
    logs = [r for r in server_log if "level" in r]
    access = [json.loads(line) for line in edge.access_log.read_text().splitlines()]
    assert events and logs and access
    for record in events + logs + access:
        assert RFC3339_MS.match(record["time"]), record
    from edgeward import http1, native

    compiled = "compiled" if http1.COMPILED else "pure Python"
    serving = next(r["message"] for r in logs if r["message"].startswith("edgeward: serving"))
    assert f"matcher backend {native.BACKEND}, HTTP/1 codec fast ({compiled})" in serving
    assert logs[0]["level"] == "info" and logs[0]["logger"] == "edgeward.proxy"


CONSOLE_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \S")


def test_console_format_on_request_and_on_a_terminal(tmp_path: Path, upstream: Upstream) -> None:
    edge = start_edge(
        tmp_path, EVENTS_POLICY, upstream=upstream.url, args=("--log-format", "console")
    )
    try:
        assert httpx.get(edge.url("/hello"), headers={"host": "app.test"}).status_code == 200
    finally:
        assert edge.stop() == 0
    lines = edge.log_text().splitlines()
    assert lines and all(CONSOLE_LINE.match(line) for line in lines), lines
    assert any(" INFO    edgeward: serving " in line for line in lines)
    assert any(" policy log endpoint=app rule=note " in line for line in lines)
    assert any(" 200 GET app.test/hello HTTP/1.1 " in line for line in lines)

    # auto: a terminal gets text
    port = free_port()
    config = tmp_path / "tty.yml"
    config.write_text(CONFIG.format(port_web=port, upstream=upstream.url))
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [*EDGEWARD, "serve", "--config", str(config)], stdout=secondary, stderr=secondary
    )
    os.close(secondary)
    try:
        wait_port(port, proc=proc)
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        out = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(primary)
    text = out.decode().replace("\r\n", "\n")
    assert "edgeward: serving" in text and not text.lstrip().startswith("{")
    assert all(CONSOLE_LINE.match(line) for line in text.splitlines() if line), text
