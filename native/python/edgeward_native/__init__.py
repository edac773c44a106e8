"""edgeward-native: the hot-path matchers of edgeward, in Rust.

A library of its own: IP prefix policies and longest-prefix tables, webhook
signature verification for common providers, a CEL compiler/evaluator, and
an HTTP/2 server connection (frames, HPACK, flow control, abuse limits).
The compiled extension is private (`edgeward_native._core`); this package is
the public API, typed by `__init__.pyi`; `__all__` is its whole namespace
(helpers are imported under private names).

Every native call turns a Rust panic into `NativeError`, an ordinary
`Exception` (see native/src/guard.rs), never a `BaseException`.
"""

from types import MappingProxyType as _MappingProxyType

from edgeward_native import _core
from edgeward_native._core import (
    CidrError,
    GeoDb,
    GeoDbError,
    H2SendError,
    H2Server,
    IpPolicy,
    IpTable,
    NativeError,
    PhaseRunner,
    RateLimitStore,
    ja4_fingerprint,
)


class UInt(int):
    """A CEL `uint` value: an `int` that remembers it is unsigned."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"UInt({int(self)})"


# --- CEL ----------------------------------------------------------------------


class PolicyExprError(ValueError):
    """A CEL parse or check error, located in the source (1-based line and
    column, columns in code points)."""

    def __init__(self, message: str, line: int, column: int, source: str) -> None:
        super().__init__(f"{line}:{column}: {message}")
        self.message = message
        self.line = line
        self.column = column
        self.source = source

    def __reduce__(self) -> tuple[type, tuple[str, int, int, str]]:
        return (type(self), (self.message, self.line, self.column, self.source))


class EvalError(Exception):
    """A CEL runtime error reaching the caller; `kind` is its stable name."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.kind, self.message))


Env = _core.Env
Program = _core.Program
Template = _core.Template
compile = _core.compile
interpolate = _core.interpolate

__version__: str = _core.__version__

# --- webhook verification ---------------------------------------------------
PROVIDERS = _core.PROVIDERS
DEFAULT_TOLERANCE_S = _MappingProxyType(_core.DEFAULT_TOLERANCE_S)
verify_webhook = _core.verify_webhook
explain_webhook = _core.explain_webhook

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "PROVIDERS",
    "CidrError",
    "Env",
    "EvalError",
    "GeoDb",
    "GeoDbError",
    "H2SendError",
    "H2Server",
    "IpPolicy",
    "IpTable",
    "NativeError",
    "PhaseRunner",
    "PolicyExprError",
    "Program",
    "RateLimitStore",
    "Template",
    "UInt",
    "__version__",
    "compile",
    "explain_webhook",
    "interpolate",
    "ja4_fingerprint",
    "verify_webhook",
]
