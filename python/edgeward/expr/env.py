"""`Env`: the declared variables and resource limits a program compiles
against (docs/cel.md §4.1, §8)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgeward.expr.celtypes import Type, declare


class Env:
    """Declared variables and resource limits for compilation.

    `variables` maps each top-level name to a type string (``"int"``,
    ``"list(string)"``, ``"map(string, dyn)"``...) or a dict of field name ->
    type for an object with fixed fields (the key ``""`` declares the
    object's own value type). ``variables=None`` declares nothing and accepts
    any identifier as ``dyn``."""

    __slots__ = ("declarations", "max_depth", "max_iterations", "max_source_length")

    def __init__(
        self,
        variables: Mapping[str, Any] | None = None,
        *,
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

    def __repr__(self) -> str:
        names = "any" if self.declarations is None else sorted(self.declarations)
        return (
            f"Env(variables={names}, max_source_length={self.max_source_length}, "
            f"max_depth={self.max_depth}, max_iterations={self.max_iterations})"
        )
