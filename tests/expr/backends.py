"""The CEL backends under test: the pure-Python reference always, the native
twin when `edgeward.native` has it. Shared by the CEL test modules."""

from __future__ import annotations

from types import ModuleType

import pytest

import edgeward.expr
import edgeward.native


def native_cel() -> ModuleType | None:
    """`edgeward.native` when its CEL is the Rust one, else None."""
    if edgeward.native.compile is edgeward.expr.compile:
        return None
    return edgeward.native


BACKENDS = ("python", "native")


def backend_module(name: str) -> ModuleType:
    if name == "python":
        return edgeward.expr
    module = native_cel()
    if module is None:
        pytest.skip("the native CEL is not built (edgeward.native uses the reference)")
    return module
