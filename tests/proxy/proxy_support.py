"""Helpers of the proxy tests: free ports, the edge as a real `edgeward
serve` process, raw-socket requests, curl."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.ports import free_port

HERE = Path(__file__).resolve().parent
EDGEWARD = [sys.executable, "-m", "edgeward.cli"]


def curl(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """The real curl, quiet but for errors (``-sS``)."""
    cmd = ["curl", "-sS", *args]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout)


def wait_port(
    port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listening on {port}")


@dataclass
class Upstream:
    port: int
    proc: subprocess.Popen[bytes]
    unix_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Edge:
    proc: subprocess.Popen[bytes]
    config: Path
    ports: dict[str, int]
    log: Path
    access_log: Path
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return next(iter(self.ports.values()))

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def rss_peak_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise RuntimeError("no VmHWM")

    def log_text(self) -> str:
        return self.log.read_text()


def start_edge(
    directory: Path,
    config_text: str,
    listeners: list[str] | None = None,
    args: tuple[str, ...] = (),
    wait: bool = True,
    **values: object,
) -> Edge:
    """Write the config (`{port_NAME}` placeholders get free ports, `{dir}`
    the directory) and start `edgeward serve` on it."""
    names = listeners or ["web"]
    ports = {name: free_port() for name in names}
    values.update({f"port_{n}": p for n, p in ports.items()})
    access_log = directory / "access.log"
    text = config_text.format(dir=directory, access_log=access_log, **values)
    config = directory / "edge.yml"
    config.write_text(text)
    log = directory / "edge.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*EDGEWARD, "serve", "--config", str(config), *args], stdout=out, stderr=out, env=env
        )
    edge = Edge(proc, config, ports, log, access_log)
    if wait:
        for port in ports.values():
            try:
                wait_port(port, proc=proc)
            except Exception:
                edge.stop()
                raise RuntimeError(f"edge did not start:\n{log.read_text()}") from None
    return edge


def raw_request(
    port: int, data: bytes, *, timeout: float = 5.0, read_until_close: bool = True
) -> bytes:
    """Send bytes on a fresh connection; return all bytes until the edge
    closes (or `timeout`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if not read_until_close and b"\r\n\r\n" in b"".join(chunks):
                    break
        except TimeoutError:
            pass
        return b"".join(chunks)
