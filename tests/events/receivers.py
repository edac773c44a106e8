"""Real receivers for the event destinations' tests: an HTTP collector
(the standard library's ThreadingHTTPServer in a thread, stoppable and
restartable on the same port) and Debian's rsyslog, started as a process
of its own with its own config (imtcp plain and over TLS), writing what it
receives to a file the test reads."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
from tests.proxy.proxy_support import free_port, wait_port

TIMEOUT = 20.0
RSYSLOG_MODULES = Path("/usr/lib/x86_64-linux-gnu/rsyslog")


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


class _Server(ThreadingHTTPServer):
    """Remembers its connections, so `stop` can close kept-alive ones."""

    def __init__(self, *args: Any) -> None:
        self.connections: set[socket.socket] = set()
        super().__init__(*args)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        self.connections.add(conn)
        return conn, addr


@dataclass
class HttpReceiver:
    """Collects POSTs; answers `status` (503 to play a SIEM that is down
    but listening). `stop` closes the port, `start` opens it again."""

    port: int = field(default_factory=free_port)
    status: int = 200
    authorization: str | None = None  # refuse (401) any other Authorization
    requests: list[Request] = field(default_factory=list)
    _server: _Server | None = None

    def start(self) -> HttpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                size = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(size)
                status = receiver.status
                wanted = receiver.authorization
                if wanted is not None and self.headers.get("authorization") != wanted:
                    status = 401
                if status < 300:
                    receiver.requests.append(
                        Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the port and every open connection: a real outage."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            for conn in list(self._server.connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/collector/event"

    def events(self) -> list[dict[str, Any]]:
        """Every event received, in order (HEC objects unwrapped)."""
        out: list[dict[str, Any]] = []
        for request in list(self.requests):
            text = request.body.decode()
            if text.startswith("["):
                out += json.loads(text)
            else:
                out += [json.loads(line)["event"] for line in text.splitlines() if line]
        return out

    def wait(self, count: int, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events()
            if len(events) >= count:
                return events
            time.sleep(0.05)
        raise AssertionError(f"{len(self.events())} events received, waited for {count}")


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


@dataclass
class Pem:
    ca: Path
    cert: Path
    key: Path


def make_certs(directory: Path) -> Pem:
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert("syslog.test", "127.0.0.1")
    pem = Pem(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    ca.cert_pem.write_to_path(str(pem.ca))
    cert.cert_chain_pems[0].write_to_path(str(pem.cert))
    cert.private_key_pem.write_to_path(str(pem.key))
    return pem


@dataclass
class Rsyslog:
    tcp_port: int
    tls_port: int | None
    out: Path
    pem: Pem

    def lines(self) -> list[list[str]]:
        """facility, severity, app-name, msgid, structured data, msg: per message."""
        if not self.out.exists():
            return []
        return [line.split("\t", 5) for line in self.out.read_text().splitlines() if line]

    def wait(self, count: int, timeout: float = TIMEOUT) -> list[list[str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.lines()
            if len(lines) >= count:
                return lines
            time.sleep(0.05)
        raise AssertionError(f"rsyslog wrote {len(self.lines())} messages, waited for {count}")


TEMPLATE = (
    'template(name="fields" type="list") {'
    ' property(name="syslogfacility") constant(value="\\t")'
    ' property(name="syslogseverity") constant(value="\\t")'
    ' property(name="app-name") constant(value="\\t")'
    ' property(name="msgid") constant(value="\\t")'
    ' property(name="structured-data") constant(value="\\t")'
    ' property(name="msg") constant(value="\\n") }'
)


@contextmanager
def rsyslog(directory: Path, *, tls_driver: str = "gtls") -> Iterator[Rsyslog]:
    """rsyslogd -n with imtcp on a free loopback port, and a TLS input with
    `tls_driver` (gtls or ossl) when Debian's module for it is installed."""
    binary = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    if not Path(binary).exists():
        pytest.skip("rsyslogd is not installed (make system-deps)")
    directory.mkdir(parents=True, exist_ok=True)
    pem = make_certs(directory)
    tcp_port = free_port()
    has_tls = (RSYSLOG_MODULES / f"lmnsd_{tls_driver}.so").exists()
    tls_port = free_port() if has_tls else None
    out = directory / "received.log"
    conf = [
        f'global(workDirectory="{directory}" defaultNetstreamDriverCAFile="{pem.ca}"'
        f' defaultNetstreamDriverCertFile="{pem.cert}"'
        f' defaultNetstreamDriverKeyFile="{pem.key}")',
        'module(load="imtcp")',
        f'input(type="imtcp" address="127.0.0.1" port="{tcp_port}")',
        TEMPLATE,
        f'action(type="omfile" file="{out}" template="fields")',
    ]
    if tls_port is not None:
        conf.insert(
            3,
            f'input(type="imtcp" address="127.0.0.1" port="{tls_port}"'
            f' streamDriver.name="{tls_driver}" streamDriver.mode="1"'
            ' streamDriver.authMode="anon")',
        )
    (directory / "rsyslog.conf").write_text("\n".join(conf) + "\n")
    log = (directory / "rsyslogd.log").open("w")
    proc = subprocess.Popen(
        [binary, "-n", "-f", str(directory / "rsyslog.conf"), "-i", str(directory / "pid")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_port(tcp_port, proc=proc)
        if tls_port is not None:
            wait_port(tls_port, proc=proc)
        yield Rsyslog(tcp_port, tls_port, out, pem)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
