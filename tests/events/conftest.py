"""Fixtures of the events tests: certificates for the agent ingress."""

from __future__ import annotations

import pytest
from tests.agents.agents_support import Pki, make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))
