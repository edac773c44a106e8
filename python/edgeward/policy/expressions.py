"""CEL for policies: the variables each phase may read, compiled once.

The schema of the variables and the gateway's functions belong to the CEL
package (`edgeward.expr.policy_env`); this module narrows it per phase, so
that reading `res.*` before there is a response, or `req.*` when a
connection opens, is a load error rather than a run-time one.
"""

from __future__ import annotations

from functools import cache

from edgeward import native
from edgeward.expr.policy_env import VARIABLES
from edgeward.policy.model import Phase

_NOT_IN = {
    Phase.TCP_CONNECT: frozenset({"req", "res"}),
    Phase.HTTP_REQUEST: frozenset({"res"}),
    Phase.HTTP_RESPONSE: frozenset(),
}


@cache
def env_for(phase: Phase) -> native.Env:
    hidden = _NOT_IN[phase]
    return native.Env({name: decl for name, decl in VARIABLES.items() if name not in hidden})


@cache
def _chain_env(phase: Phase) -> native.Env:
    # Chains join expressions that each passed the normal limits; a chain
    # nested deeper than the hard cap (100) fails to compile and its rules
    # run one by one.
    hidden = _NOT_IN[phase]
    variables = {name: decl for name, decl in VARIABLES.items() if name not in hidden}
    return native.Env(variables, max_source_length=1 << 20, max_depth=100)


def compile_chain(source: str, phase: Phase) -> native.Program:
    """A program the loader builds from already-checked expressions."""
    return native.compile(source, env=_chain_env(phase))


def compile_expression(source: str, phase: Phase) -> native.Program:
    """Raises `native.PolicyExprError`."""
    return native.compile(source, env=env_for(phase))


def condition_type_error(program: native.Program) -> str | None:
    """Why `program` cannot be a condition, or None. A condition's static
    type must be `bool`; only a `dyn` result (`vars.x`, `json.decode(...)`)
    is left to the run-time check."""
    result = program.result_type
    if result in ("bool", "dyn"):
        return None
    return f"has type {result}, not bool: a condition must be true or false"


def compile_template(source: str, phase: Phase) -> native.Template:
    """Raises `native.PolicyExprError`."""
    return native.interpolate(source, env=env_for(phase))
