"""Loopback ports for the servers the tests start.

A test picks a port, then starts a process that binds it: in between, the
port must not be handed to anyone else. A port from `bind(0)` can be: the
kernel gives the same ephemeral ports to every `bind(0)` and every
outgoing connection, so another xdist worker's upstream could take it and
receive this test's traffic. So ports come from below the kernel's
ephemeral range, each worker from its own slice, each port once per
process. This module is imported under one name (`tests.ports`), so its
cursor is one per process even where a helper module is imported twice.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

LOWEST = 10_000  # below: ports that well-known services may hold


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def _slice() -> range:
    """This worker's ports (all of them without xdist)."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    size = (_ephemeral_low() - LOWEST) // workers
    return range(LOWEST + worker * size, LOWEST + (worker + 1) * size)


def _ports() -> Iterator[int]:
    ports = _slice()
    if len(ports) < 100:  # an unusual ephemeral range: fall back on the kernel's choice
        while True:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                yield int(s.getsockname()[1])
    yield from ports


_PORTS = _ports()


def free_port() -> int:
    """A loopback port nothing listens on, not handed out before by this
    process, that no `bind(0)` or other worker will take meanwhile."""
    for port in _PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use (or lingering from an earlier run): the next one
        return port
    raise RuntimeError("no free loopback port left in this test worker's range")
