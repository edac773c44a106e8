"""CEL for policies: the variables each phase may read, compiled once.

The schema of the variables and the gateway's functions belong to the CEL
package (`edgeward.expr.policy_env`); this module narrows it per phase, so
that reading `res.*` before there is a response, or `req.*` when a
connection opens, is a load error rather than a run-time one.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, Protocol

from edgeward import native
from edgeward.expr.interpolate import escape_url_value, split_template
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


def compile_expression(
    source: str, phase: Phase, variables: Mapping[str, Any] | None = None
) -> native.Program:
    """Raises `native.PolicyExprError`. `variables` declares more roots
    than the phase's (http-request's `retry_condition`: a module constant)."""
    if variables is None:
        return native.compile(source, env=env_for(phase))
    return native.compile(source, env=_extended_env(phase, id(variables), variables))


_EXTENDED: dict[tuple[Phase, int], native.Env] = {}


def _extended_env(phase: Phase, key: int, variables: Mapping[str, Any]) -> native.Env:
    env = _EXTENDED.get((phase, key))
    if env is None:
        hidden = _NOT_IN[phase]
        declared = {name: decl for name, decl in VARIABLES.items() if name not in hidden}
        env = _EXTENDED[(phase, key)] = native.Env({**declared, **variables})
    return env


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


class Renderable(Protocol):
    """A compiled `${...}` field: a `native.Template` or a `UrlTemplate`."""

    @property
    def source(self) -> str: ...

    @property
    def references(self) -> frozenset[str]: ...

    @property
    def is_constant(self) -> bool: ...

    def render(self, activation: Mapping[str, Any]) -> str: ...


class UrlTemplate:
    """The template of a URL-valued field (redirect and url-rewrite `to`,
    http-request `url`): the text the policy wrote is kept as written, and
    each interpolated value is percent-encoded (`escape_url_value`), so
    ``?city=${conn.geo.city}`` gives ``?city=San%20Francisco``. Each
    ``${...}`` is its own compiled template; the whole was compiled first,
    so errors are located in the field as written."""

    __slots__ = ("_parts", "is_constant", "references", "source")

    def __init__(self, whole: native.Template, parts: tuple[str | native.Template, ...]) -> None:
        self.source = whole.source
        self.references = whole.references
        self.is_constant = whole.is_constant
        self._parts = parts

    def render(self, activation: Mapping[str, Any]) -> str:
        """Raises `native.EvalError`."""
        return "".join(
            part if isinstance(part, str) else escape_url_value(part.render(activation))
            for part in self._parts
        )

    def __repr__(self) -> str:
        return f"UrlTemplate({self.source!r})"


def compile_url_template(source: str, phase: Phase) -> Renderable:
    """A URL-valued template (see `UrlTemplate`); a template without
    ``${...}`` is returned as is. Raises `native.PolicyExprError`."""
    whole = compile_template(source, phase)
    if whole.is_constant:
        return whole
    env = env_for(phase)
    parts = tuple(
        part
        if isinstance(part, str)
        else native.interpolate("${" + source[part[0] : part[1]] + "}", env=env)
        for part in split_template(source)
    )
    return UrlTemplate(whole, parts)
