"""Fixtures of the admin API tests: certificates (trustme) and one edge with
the `api:` listener and an agent ingress, shared by a module's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.admin.admin_support import ApiEdge, api_edge
from tests.agents.agents_support import Pki, make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[ApiEdge]:
    with api_edge(tmp_path_factory.mktemp("admin-edge"), pki) as running:
        yield running
