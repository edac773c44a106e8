"""The CEL backends under test: the pure-Python reference always, the native
twin when `edgeward.native` has it. Shared by the CEL test modules."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

import edgeward.expr
import edgeward.native


def native_cel() -> ModuleType | None:
    """`edgeward.native` when its CEL is the Rust one, else None."""
    if edgeward.native.compile is edgeward.expr.compile:
        return None
    return edgeward.native


BACKENDS = ("python", "native")


def is_reference(cel: ModuleType) -> bool:
    return cel.compile is edgeward.expr.compile


def for_backend(value: Any, cel: ModuleType) -> Any:
    """`value` with every `edgeward.expr.UInt` replaced by the backend's own
    `UInt` (each backend recognises its own class), recursively."""
    if isinstance(value, edgeward.expr.UInt):
        return cel.UInt(int(value))
    if isinstance(value, list | tuple):
        return [for_backend(v, cel) for v in value]
    if isinstance(value, dict):
        return {for_backend(k, cel): for_backend(v, cel) for k, v in value.items()}
    return value


def backend_module(name: str) -> ModuleType:
    if name == "python":
        return edgeward.expr
    module = native_cel()
    if module is None:
        pytest.skip("the native CEL is not built (edgeward.native uses the reference)")
    return module
