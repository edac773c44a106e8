"""The facade every other module imports for the hot-path matchers.

It exposes the API of `edgeward_native` (typed in its `__init__.pyi`),
backed by the compiled Rust module when it can be imported and by the
pure-Python reference twins otherwise. ``EDGEWARD_BACKEND=python`` forces the
reference; ``EDGEWARD_BACKEND=rust`` makes a missing native module an error.
Only this module imports `edgeward_native`.

`NativeError` is what a bug in the native module raises (a Rust panic caught
at the boundary): an ordinary `Exception`, so the proxy's handlers contain it
to the one request (a 500 with the policy-failure code). The pure-Python
twins never raise it; under them it is a class nothing raises.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import TYPE_CHECKING, Literal

Backend = Literal["rust", "python"]


def _load_native() -> ModuleType | None:
    wanted = os.environ.get("EDGEWARD_BACKEND", "").strip().lower()
    if wanted not in ("", "rust", "python"):
        raise ImportError(f"EDGEWARD_BACKEND must be 'rust' or 'python', not {wanted!r}")
    if wanted == "python":
        return None
    try:
        import edgeward_native
    except ImportError:
        if wanted == "rust":
            raise
        return None
    return edgeward_native


_native = _load_native()
BACKEND: Backend = "rust" if _native is not None else "python"

# Types come from the stub of edgeward_native (the contract); at run time each
# name is bound to the chosen backend's implementation.

# --- failure containment ----------------------------------------------------
if TYPE_CHECKING:
    from edgeward_native import NativeError
elif _native is not None:
    NativeError = _native.NativeError
else:

    class NativeError(RuntimeError):
        """A caught panic of the native module (never raised by the twins)."""


# --- IP prefix matching -----------------------------------------------------
if TYPE_CHECKING:
    from edgeward_native import CidrError, IpPolicy, IpTable
elif _native is not None:
    CidrError, IpPolicy, IpTable = _native.CidrError, _native.IpPolicy, _native.IpTable
else:
    from edgeward.ipnet.reference import CidrError, IpPolicy, IpTable

# --- IP intelligence (MaxMind DB files) and TLS fingerprints -------------------
if TYPE_CHECKING:
    from edgeward_native import GeoDb, GeoDbError, ja4_fingerprint
elif _native is not None:
    GeoDb, GeoDbError = _native.GeoDb, _native.GeoDbError
    ja4_fingerprint = _native.ja4_fingerprint
else:
    from edgeward.ipintel.reference import GeoDb, GeoDbError
    from edgeward.ja4 import ja4_fingerprint

# --- webhook verification ---------------------------------------------------

if TYPE_CHECKING or _native is not None:
    from edgeward_native import (
        DEFAULT_TOLERANCE_S,
        PROVIDERS,
        explain_webhook,
        verify_webhook,
    )
else:
    from edgeward.webhooks.reference import (
        DEFAULT_TOLERANCE_S,
        PROVIDERS,
        explain_webhook,
        verify_webhook,
    )

# --- CEL ----------------------------------------------------------------------

if TYPE_CHECKING or _native is not None:
    from edgeward_native import (
        Env,
        EvalError,
        PolicyExprError,
        Program,
        Template,
        UInt,
        compile,
        interpolate,
    )
else:
    from edgeward.expr import (
        Env,
        EvalError,
        PolicyExprError,
        Program,
        Template,
        UInt,
        compile,
        interpolate,
    )

# --- HTTP/2 server connection ------------------------------------------------
# No twin here: the reference is `edgeward.http2.connection.H2Server` (on h2),
# a layer above; `edgeward.http2` picks one of the two by `NativeH2Server`.

if TYPE_CHECKING:
    from edgeward_native import H2SendError
    from edgeward_native import H2Server as H2ServerBase

    NativeH2Server: type[H2ServerBase] | None
elif _native is not None:
    H2SendError, NativeH2Server = _native.H2SendError, _native.H2Server
    H2ServerBase = NativeH2Server
else:
    NativeH2Server = None
    H2ServerBase = object  # the fast path's base; unused without the module

    class H2SendError(ValueError):
        """A send the stream's state does not allow (never raised by the twin)."""


# --- policy phases ----------------------------------------------------------------
# No twin here: the reference is the Python engine (`edgeward.policy.engine`),
# which runs every phase without it; `edgeward.policy.native_phase` uses it
# when it exists.

if TYPE_CHECKING:
    from edgeward_native import PhaseRunner as _PhaseRunner

    PhaseRunnerType = _PhaseRunner  # the class, for annotations
    PhaseRunner: type[_PhaseRunner] | None
elif _native is not None:
    PhaseRunner = PhaseRunnerType = _native.PhaseRunner
else:
    PhaseRunner = PhaseRunnerType = None

# The rate-limit buckets the runner and the action share; the reference is
# `edgeward.policy.ratelimit.MemoryStore`.
if TYPE_CHECKING:
    from edgeward_native import RateLimitStore as _RateLimitStore

    RateLimitStoreType = _RateLimitStore
    RateLimitStore: type[_RateLimitStore] | None
elif _native is not None:
    RateLimitStore = RateLimitStoreType = _native.RateLimitStore
else:
    RateLimitStore = RateLimitStoreType = None


__all__ = [
    "BACKEND",
    "DEFAULT_TOLERANCE_S",
    "PROVIDERS",
    "Backend",
    "CidrError",
    "Env",
    "EvalError",
    "GeoDb",
    "GeoDbError",
    "H2SendError",
    "H2ServerBase",
    "IpPolicy",
    "IpTable",
    "NativeError",
    "NativeH2Server",
    "PhaseRunner",
    "PolicyExprError",
    "Program",
    "RateLimitStore",
    "Template",
    "UInt",
    "compile",
    "explain_webhook",
    "interpolate",
    "ja4_fingerprint",
    "verify_webhook",
]
