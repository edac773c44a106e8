"""edgeward-native: the hot-path matchers of edgeward, in Rust.

A library of its own: IP prefix policies and longest-prefix tables, webhook
signature verification for common providers, and a CEL compiler/evaluator.
The compiled extension is private (`edgeward_native._core`); this package is
the public API, typed by `__init__.pyi`.
"""

from __future__ import annotations

from edgeward_native import _core
from edgeward_native._core import CidrError, IpPolicy, IpTable


class UInt(int):
    """A CEL `uint` value: an `int` that remembers it is unsigned."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"UInt({int(self)})"


__version__: str = _core.__version__

__all__ = ["CidrError", "IpPolicy", "IpTable", "UInt", "__version__"]
