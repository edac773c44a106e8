"""Stand-in for Cython's `cython` module when Cython is not installed.

The fast-path modules are written in Cython's pure-Python mode: one source
runs as plain Python (the twin) and is compiled by its `_*.pyx` wrapper. The
decorators and type names they use are no-ops here, exactly as in Cython's own
`Shadow` module that serves the same purpose when Cython is installed.
"""

from __future__ import annotations

import dataclasses as dataclasses  # noqa: PLC0414 - re-exported: `cython.dataclasses` in Python
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F")
T = TypeVar("T")

compiled = False

# Cython's C types, as the Python types their values have.
int = int  # noqa: PLW0127
bint = bool
uchar = int
Py_ssize_t = int
p_uchar = bytes  # indexing gives ints, slicing bytes: as a bytes object does


NULL = None


def cast(_type: Any, value: T) -> T:
    return value


def _identity(obj: F) -> F:
    return obj


cclass = final = cfunc = ccall = inline = _identity


def locals(**_: Any) -> Callable[[F], F]:
    return _identity


def binding(_: bool) -> Callable[[F], F]:
    return _identity


def annotation_typing(_: bool) -> Callable[[F], F]:
    return _identity


def exceptval(*_: Any, **__: Any) -> Callable[[F], F]:
    return _identity


def declare(_type: Any, value: T = None, **__: Any) -> T:  # type: ignore[assignment]
    return value
