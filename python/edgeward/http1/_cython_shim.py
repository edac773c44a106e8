"""Stand-in for Cython's `cython` module when Cython is not installed.

The fast-path modules are written in Cython's pure-Python mode: one source
runs as plain Python (the twin) and is compiled by its `_*.pyx` wrapper. The
decorators and type names they use are no-ops here, exactly as in Cython's own
`Shadow` module that serves the same purpose when Cython is installed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F")

compiled = False

int = int  # noqa: A001 - the names of Cython's C types
bint = bool
Py_ssize_t = int
uchar = int


def _identity(obj: F) -> F:
    return obj


cclass = final = cfunc = ccall = inline = _identity


def locals(**_: Any) -> Callable[[F], F]:  # noqa: A001
    return _identity


def exceptval(*_: Any, **__: Any) -> Callable[[F], F]:
    return _identity


def declare(_type: Any = None, value: Any = None, **__: Any) -> Any:
    return value
