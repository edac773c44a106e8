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
from pathlib import Path

LOWEST = 24_000  # below: services, and the ports some tests name (agent tcp ranges at 20000)


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


_cursor = [-1]  # the next port to try in this worker's slice (-1: its start)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False  # in use (or lingering from an earlier run)
    return True


def free_ports(count: int) -> int:
    """The first of `count` consecutive loopback ports nothing listens on,
    that no `bind(0)` or other worker will take meanwhile (for a config
    that takes a port range), none handed out before by this process
    until its slice is used up (then the search wraps around)."""
    ports = _slice()
    if len(ports) < 100:  # an unusual ephemeral range: the kernel's choice, checked
        while True:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                first = int(s.getsockname()[1])
            if all(_bindable(p) for p in range(first + 1, first + count)):
                return first
    resume = ports.start if _cursor[0] < 0 else _cursor[0]
    for begin, end in ((resume, ports.stop), (ports.start, resume)):  # then wrapped around
        first = begin
        while first + count <= end:
            taken = next((p for p in range(first, first + count) if not _bindable(p)), None)
            if taken is None:
                _cursor[0] = first + count
                return first
            first = taken + 1
    raise RuntimeError("no free loopback ports in this test worker's range")


def free_port() -> int:
    """A loopback port nothing listens on (`free_ports`)."""
    return free_ports(1)
