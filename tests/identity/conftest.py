"""Fixtures of the identity tests: one OpenID Provider (Canaille) for the
module, TLS certificates for *.edge.test, the upstream echo server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.identity.op import Provider, running_provider
from tests.identity.support import Certs, make_certs, resolve_test_hosts
from tests.policy.e2e import Server, serve
from tests.identity.support import echo


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
