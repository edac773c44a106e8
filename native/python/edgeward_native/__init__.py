"""edgeward-native: the hot-path matchers of edgeward, in Rust.

A library of its own: IP prefix policies and longest-prefix tables, webhook
signature verification for common providers, and a CEL compiler/evaluator.
The compiled extension is private (`edgeward_native._core`); this package is
the public API, typed by `__init__.pyi`.
"""

from __future__ import annotations

from types import MappingProxyType

from edgeward_native import _core


class UInt(int):
    """A CEL `uint` value: an `int` that remembers it is unsigned."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"UInt({int(self)})"


__version__: str = _core.__version__

# --- webhook verification ---------------------------------------------------
PROVIDERS = _core.PROVIDERS
DEFAULT_TOLERANCE_S = MappingProxyType(_core.DEFAULT_TOLERANCE_S)
verify_webhook = _core.verify_webhook
explain_webhook = _core.explain_webhook

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "PROVIDERS",
    "UInt",
    "__version__",
    "explain_webhook",
    "verify_webhook",
]
