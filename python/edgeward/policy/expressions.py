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
from typing import Any

from edgeward import native
from edgeward.expr.policy_env import VARIABLES
from edgeward.policy.model import Phase

_NOT_IN = {
    Phase.TCP_CONNECT: frozenset({"req", "res"}),
    Phase.HTTP_REQUEST: frozenset({"res"}),
    Phase.HTTP_RESPONSE: frozenset(),
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

    def get(self, phase: Phase, chain: bool = False) -> native.Env:
        env = self._envs.get((phase, chain))
        if env is None:
            hidden = _NOT_IN[phase]
            variables = {name: decl for name, decl in VARIABLES.items() if name not in hidden}
            if chain:
                # Chains join expressions that each passed the normal limits;
                # a chain nested deeper than the hard cap (100) fails to
                # compile and its rules run one by one.
                env = native.Env(
                    variables, secrets=self.secrets, max_source_length=1 << 20, max_depth=100
                )
            else:
                env = native.Env(variables, secrets=self.secrets)
            self._envs[(phase, chain)] = env
        return env

    def __repr__(self) -> str:
        return f"Envs(secrets={'unknown' if self.secrets is None else 'known'})"


EnvCache = dict[tuple[Phase, bool], native.Env]
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


def compile_expression(source: str, phase: Phase, envs: Envs | None = None) -> native.Program:
    """Raises `native.PolicyExprError`."""
    envs = envs or _UNKNOWN
    program = native.compile(source, env=envs.get(phase))
    envs.secrets_read.update(program.secrets_read)
    return program


def compile_template(source: str, phase: Phase, envs: Envs | None = None) -> native.Template:
    """Raises `native.PolicyExprError`."""
    envs = envs or _UNKNOWN
    template = native.interpolate(source, env=envs.get(phase))
    envs.secrets_read.update(template.secrets_read)
    return template
