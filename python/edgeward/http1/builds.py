"""Which build of a compiled module runs: the Cython build when there is one
(and ``EDGEWARD_BACKEND`` is not ``python``), else its pure-Python source."""

from __future__ import annotations

import importlib
import os
from types import ModuleType


def load(name: str) -> ModuleType:
    """`edgeward.http1._<name>` (compiled) or `edgeward.http1.<name>` (its twin)."""
    if os.environ.get("EDGEWARD_BACKEND", "").strip().lower() != "python":
        try:
            return importlib.import_module(f"edgeward.http1._{name}")
        except ImportError:
            pass
    return importlib.import_module(f"edgeward.http1.{name}")
