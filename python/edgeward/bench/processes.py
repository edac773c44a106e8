"""Ports, child processes and the CPU time they spend (Linux /proc)."""

from __future__ import annotations

import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


def interpreter() -> str:
    """The Python the bench's edges run on (they run `sys.executable`),
    named by the file a venv's `python` links to: its build moves the
    edge's CPU per request by 10-26 % (docs/proxy.md, "The interpreter")."""
    return (
        f"{platform.python_implementation()} {platform.python_version()}"
        f" ({os.path.realpath(sys.executable)})"
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its children (the
    workers of nginx and of `edgeward --workers N`)."""
    total = 0.0
    children = Path(f"/proc/{pid}/task/{pid}/children")
    pids = [pid, *(int(c) for c in children.read_text().split())] if children.exists() else [pid]
    for each in pids:
        try:
            stat = Path(f"/proc/{each}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after the command name
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on now, never one this process was
    given before: ports are picked before anything binds them, and the
    kernel may hand a just-closed port out again."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def wait_port(port: int, timeout: float = 60, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until something accepts on 127.0.0.1:`port`; a `proc` that
    exits first is reported at once (its log says why)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ChildProcessError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port}")


@contextmanager
def running(
    cmd: list[str],
    ports: list[int],
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process (output to `log`) once it listens on every port
    (`timeout`: a bound for a hang; a loaded machine starts Python slowly);
    SIGTERM (then SIGKILL after 20 s) when the block ends."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out, env=env)
    try:
        for port in ports:
            wait_port(port, timeout, proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
