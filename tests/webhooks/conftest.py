"""The backend fixture: every webhook test runs on the Rust module and on
the pure-Python reference twin."""

from __future__ import annotations

from types import ModuleType

import pytest

from edgeward.webhooks import reference


@pytest.fixture(params=["rust", "python"])
def backend(request: pytest.FixtureRequest) -> ModuleType:
    if request.param == "python":
        return reference
    return pytest.importorskip("edgeward_native")
