"""Fixtures of the variables tests: the small MaxMind DB files (written
once per session with `mmdb-writer`) and the Rust module when in use."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import pytest
from tests.variables import geodata


def native_module() -> ModuleType:
    """`edgeward_native`, or a skip under EDGEWARD_BACKEND=python."""
    if os.environ.get("EDGEWARD_BACKEND", "").strip().lower() == "python":
        pytest.skip("EDGEWARD_BACKEND=python: the Rust module is not in use")
    import edgeward_native

    return edgeward_native


@pytest.fixture(scope="session")
def mmdb(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("mmdb")
    return {
        "city": geodata.write_city(directory / "city.mmdb"),
        "asn": geodata.write_asn(directory / "asn.mmdb"),
    }
