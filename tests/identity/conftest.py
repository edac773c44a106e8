"""Fixtures of the identity tests: one OpenID Provider (Canaille) for the
module, TLS certificates for *.edge.test, the upstream echo server."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.identity.op import Provider, running_provider
from tests.identity.support import Certs, echo, make_certs, resolve_test_hosts
from tests.policy.e2e import Server, serve
from tests.proxy.proxy_support import free_port, wait_port


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with running_provider() as op:
        op.user("alice", "alice@example.com", "alice-password-1", "Alice Liddell")
        op.user("mallory", "mallory@evil.test", "mallory-password-1", "Mallory Evil")
        yield op


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def upstream() -> Iterator[Server]:
    with serve({"/": echo, "/private/page": echo, "/a": echo, "/b": echo}) as server:
        yield server


@pytest.fixture(autouse=True)
def _test_hosts() -> Iterator[None]:
    with resolve_test_hosts():
        yield


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (scripts/system-deps installs it)")
    port = free_port()
    directory = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, proc=proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
