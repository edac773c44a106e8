"""`Env`: the declared variables and resource limits a program compiles
against (docs/cel.md §4.1, §8)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgeward.expr.celtypes import Type, declare

# Deeper trees would bring the recursive parser, checker and evaluator near
# Python's default stack limit (~7 frames per nesting level).
MAX_DEPTH_LIMIT = 100


class Env:
    """Declared variables and resource limits for compilation.

    `variables` maps each top-level name to a type string (``"int"``,
    ``"list(string)"``, ``"map(string, dyn)"``...) or a dict of field name ->
    type for an object with fixed fields (the key ``""`` declares the
    object's own value type). ``variables=None`` declares nothing and accepts
    any identifier as ``dyn``.

    `secrets` is the table `secrets.get(vault, name)` reads (vault -> name ->
    value), bound into the programs compiled against this Env; None: no
    table (every lookup is an `unbound` error at run time, docs/cel.md §11.6).
    Its values are never shown (repr, errors)."""

    __slots__ = ("declarations", "max_depth", "max_iterations", "max_source_length", "secrets")

    def __init__(
        self,
        variables: Mapping[str, Any] | None = None,
        *,
        secrets: Mapping[str, Mapping[str, str]] | None = None,
        max_source_length: int = 4096,
        max_depth: int = 64,
        max_iterations: int = 10_000,
    ) -> None:
        for name, limit in (
            ("max_source_length", max_source_length),
            ("max_depth", max_depth),
            ("max_iterations", max_iterations),
        ):
            if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
                raise ValueError(f"{name} must be a positive int, not {limit!r}")
        if max_depth > MAX_DEPTH_LIMIT:
            raise ValueError(f"max_depth must be at most {MAX_DEPTH_LIMIT}, not {max_depth}")
        self.max_source_length = max_source_length
        self.max_depth = max_depth
        self.max_iterations = max_iterations
        self.declarations: dict[str, Type] | None = None
        if variables is not None:
            self.declarations = {}
            for name, spec in variables.items():
                if not isinstance(name, str) or not name.isidentifier() or not name.isascii():
                    raise ValueError(f"variable names must be identifiers, not {name!r}")
                self.declarations[name] = declare(spec, name)
        self.secrets = None if secrets is None else secret_table(secrets)

    def __repr__(self) -> str:
        names = "any" if self.declarations is None else sorted(self.declarations)
        shown = "" if self.secrets is None else f"secrets=<{len(self.secrets)} vault(s)>, "
        return (
            f"Env(variables={names}, {shown}max_source_length={self.max_source_length}, "
            f"max_depth={self.max_depth}, max_iterations={self.max_iterations})"
        )


SecretTable = dict[str, dict[str, str]]


def secret_table(secrets: Mapping[str, Mapping[str, str]]) -> SecretTable:
    """A private copy of a secrets table, checked (the message names the
    vault and secret, never the value)."""
    if not isinstance(secrets, Mapping):
        raise ValueError("secrets must be a mapping of vault names to mappings")
    table: SecretTable = {}
    for vault, entries in secrets.items():
        if not isinstance(vault, str) or not isinstance(entries, Mapping):
            raise ValueError(f"secrets: vault {vault!r} must be a str mapped to a mapping")
        table[vault] = {}
        for name, value in entries.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise ValueError(f"secrets: {vault!r}/{name!r} must be a str with a str value")
            table[vault][name] = value
    return table
