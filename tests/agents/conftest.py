"""Fixtures of the agent tests: certificates (trustme) and the upstream app
of the proxy tests, as a real process on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.agents.agents_support import Pki, make_pki
from tests.proxy.proxy_support import HERE, Upstream, wait_port


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    directory = tmp_path_factory.mktemp("agents-upstream")
    port_file = directory / "port"
    proc = subprocess.Popen([sys.executable, str(HERE / "upstream_app.py"), str(port_file)])
    deadline = time.monotonic() + 10
    while not port_file.exists() or not port_file.read_text():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("upstream did not start")
        time.sleep(0.02)
    up = Upstream(int(port_file.read_text()), proc, Path("/nonexistent"))
    wait_port(up.port)
    yield up
    proc.terminate()
    proc.wait(5)
