"""CEL for policies: the variables each phase may read, compiled once.

The schema of the variables and the gateway's functions belong to the CEL
package (`edgeward.expr.policy_env`); this module narrows it per phase, so
that reading `res.*` before there is a response, or `req.*` when a
connection opens, is a load error rather than a run-time one.

`Envs` binds one policy's Envs to its secrets (`secrets.get` reads them:
docs/cel.md §11.6): each compiled policy has its own, never a global table.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any, Protocol

from edgeward import native
from edgeward.expr.interpolate import escape_url_value, split_template
from edgeward.expr.policy_env import VARIABLES
from edgeward.policy.model import Phase

_NOT_IN = {
    Phase.TCP_CONNECT: frozenset({"req", "res", "sse"}),
    Phase.HTTP_REQUEST: frozenset({"res", "sse"}),
    Phase.HTTP_RESPONSE: frozenset({"sse"}),
    Phase.EVENT_STREAM_MESSAGE: frozenset(),
}

SecretRef = tuple[str | None, str | None]


class Envs:
    """The CEL Envs of one policy, per phase, built on first use, bound to
    its `secrets` (None: unknown, as in `policy check` without an edge
    config: `secrets.get` compiles and fails at run time). Notes the
    secrets its programs read (`secrets_read`)."""

    __slots__ = ("_envs", "secrets", "secrets_read")

    def __init__(self, secrets: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.secrets = secrets
        self._envs = _shared_envs(secrets)
        self.secrets_read: set[SecretRef] = set()

    def get(
        self, phase: Phase, chain: bool = False, extra: Mapping[str, Any] | None = None
    ) -> native.Env:
        """`extra` declares roots beyond the phase's (http-request's
        `retry_condition`): a module constant, cached by identity."""
        key = (phase, chain, 0 if extra is None else id(extra))
        env = self._envs.get(key)
        if env is None:
            hidden = _NOT_IN[phase]
            variables = {name: decl for name, decl in VARIABLES.items() if name not in hidden}
            if extra is not None:
                variables.update(extra)
            if chain:
                # Chains join expressions that each passed the normal limits;
                # a chain nested deeper than the hard cap (100) fails to
                # compile and its rules run one by one.
                env = native.Env(
                    variables, secrets=self.secrets, max_source_length=1 << 20, max_depth=100
                )
            else:
                env = native.Env(variables, secrets=self.secrets)
            self._envs[key] = env
        return env

    def __repr__(self) -> str:
        return f"Envs(secrets={'unknown' if self.secrets is None else 'known'})"


EnvCache = dict[tuple[Phase, bool, int], native.Env]
_NO_SECRETS: EnvCache = {}
# The policies of one edge config share its `Secrets` object, and so their
# Envs (building one costs 0.3 ms native, 3 ms pure Python): by object, for
# as long as it lives (a reload brings a new one).
_BY_TABLE: dict[int, tuple[weakref.ReferenceType[Any], EnvCache]] = {}


def _shared_envs(secrets: Mapping[str, Mapping[str, str]] | None) -> EnvCache:
    if secrets is None:
        return _NO_SECRETS
    key = id(secrets)
    entry = _BY_TABLE.get(key)
    if entry is not None and entry[0]() is secrets:
        return entry[1]
    try:
        ref = weakref.ref(secrets, lambda _ref, key=key: _BY_TABLE.pop(key, None))  # type: ignore[misc]
    except TypeError:  # a plain dict: this policy's own
        return {}
    cache: EnvCache = {}
    _BY_TABLE[key] = (ref, cache)
    return cache


_UNKNOWN = Envs()


def env_for(phase: Phase) -> native.Env:
    """The phase's Env without secrets."""
    return _UNKNOWN.get(phase)


def compile_chain(source: str, phase: Phase, envs: Envs | None = None) -> native.Program:
    """A program the loader builds from already-checked expressions."""
    return native.compile(source, env=(envs or _UNKNOWN).get(phase, chain=True))


def compile_expression(
    source: str,
    phase: Phase,
    envs: Envs | None = None,
    variables: Mapping[str, Any] | None = None,
) -> native.Program:
    """Raises `native.PolicyExprError`. `variables` declares more roots
    than the phase's (http-request's `retry_condition`: a module constant)."""
    envs = envs or _UNKNOWN
    program = native.compile(source, env=envs.get(phase, extra=variables))
    envs.secrets_read.update(program.secrets_read)
    return program


def condition_type_error(program: native.Program) -> str | None:
    """Why `program` cannot be a condition, or None. A condition's static
    type must be `bool`; only a `dyn` result (`vars.x`, `json.decode(...)`)
    is left to the run-time check."""
    result = program.result_type
    if result in ("bool", "dyn"):
        return None
    return f"has type {result}, not bool: a condition must be true or false"


def compile_template(source: str, phase: Phase, envs: Envs | None = None) -> native.Template:
    """Raises `native.PolicyExprError`."""
    envs = envs or _UNKNOWN
    template = native.interpolate(source, env=envs.get(phase))
    envs.secrets_read.update(template.secrets_read)
    return template


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

    @property
    def parts(self) -> tuple[str | native.Template, ...]:
        """The text as written and the templates of the values (the native
        phase runner renders them itself, with `escape_url_value`)."""
        return self._parts

    def render(self, activation: Mapping[str, Any]) -> str:
        """Raises `native.EvalError`."""
        return "".join(
            part if isinstance(part, str) else escape_url_value(part.render(activation))
            for part in self._parts
        )

    def __repr__(self) -> str:
        return f"UrlTemplate({self.source!r})"


def compile_url_template(source: str, phase: Phase, envs: Envs | None = None) -> Renderable:
    """A URL-valued template (see `UrlTemplate`); a template without
    ``${...}`` is returned as is. Raises `native.PolicyExprError`."""
    whole = compile_template(source, phase, envs)
    if whole.is_constant:
        return whole
    env = (envs or _UNKNOWN).get(phase)
    parts = tuple(
        part
        if isinstance(part, str)
        else native.interpolate("${" + source[part[0] : part[1]] + "}", env=env)
        for part in split_template(source)
    )
    return UrlTemplate(whole, parts)
