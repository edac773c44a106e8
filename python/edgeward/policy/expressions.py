"""CEL for policies: the variables each phase may read, compiled once.

The schema of the variables and the gateway's functions are the CEL
package's (`edgeward.expr.policy_env`); this module only picks the
environment of a phase and compiles against it.
"""

from __future__ import annotations

from functools import cache

from edgeward import native
from edgeward.policy.model import Phase


@cache
def env_for(phase: Phase) -> native.Env:
    return native.Env()


def compile_expression(source: str, phase: Phase) -> native.Program:
    """Raises `native.PolicyExprError`."""
    return native.compile(source, env=env_for(phase))


def compile_template(source: str, phase: Phase) -> native.Template:
    """Raises `native.PolicyExprError`."""
    return native.interpolate(source, env=env_for(phase))
