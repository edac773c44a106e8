"""The `ipnet` fixture: each test runs once per backend (the Rust module and
the pure-Python reference). ``EDGEWARD_BACKEND=python`` skips the Rust runs."""

from __future__ import annotations

import os
from types import ModuleType, SimpleNamespace

import pytest

from edgeward.ipnet import reference


def native_module() -> ModuleType | None:
    if os.environ.get("EDGEWARD_BACKEND", "").strip().lower() == "python":
        return None
    try:
        import edgeward_native
    except ImportError:
        if os.environ.get("EDGEWARD_BACKEND", "").strip().lower() == "rust":
            raise
        return None
    return edgeward_native


def backend(name: str) -> SimpleNamespace:
    module = reference if name == "python" else native_module()
    if module is None:
        pytest.skip("the Rust module is not in use (EDGEWARD_BACKEND=python or not built)")
    return SimpleNamespace(
        name=name, IpPolicy=module.IpPolicy, IpTable=module.IpTable, CidrError=module.CidrError
    )


@pytest.fixture(params=["rust", "python"], scope="session")
def ipnet(request: pytest.FixtureRequest) -> SimpleNamespace:
    return backend(request.param)


@pytest.fixture(scope="session")
def both() -> tuple[SimpleNamespace, SimpleNamespace]:
    """Rust and Python side by side, for the differential tests."""
    return backend("rust"), backend("python")
