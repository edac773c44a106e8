"""`compile` and `Program`: parse, check and plan once; evaluate many times."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgeward.expr import ast
from edgeward.expr.checker import check, references, secret_reads
from edgeward.expr.env import Env
from edgeward.expr.errors import PolicyExprError
from edgeward.expr.interpreter import Compiler, Evaluation, Step
from edgeward.expr.parser import parse
from edgeward.expr.values import to_python

_DEFAULT_ENV = Env()


class Program:
    """A compiled expression. Immutable; `evaluate` may run concurrently."""

    __slots__ = (
        "_max_iterations",
        "_slots",
        "_step",
        "references",
        "result_type",
        "secrets_read",
        "source",
    )

    def __init__(
        self,
        source: str,
        tree: ast.Node,
        env: Env,
        result_type: str = "dyn",
        secrets_read: frozenset[tuple[str | None, str | None]] = frozenset(),
    ) -> None:
        self.source = source
        # The static type of the result (`bool`, `string`, `dyn`...).
        self.result_type = result_type
        self.references: frozenset[str] = frozenset(references(tree))
        self.secrets_read = secrets_read
        compiler = Compiler()
        self._step: Step = compiler.compile(tree)
        self._slots = compiler.slots
        self._max_iterations = env.max_iterations

    def evaluate(self, activation: Mapping[str, Any]) -> Any:
        """Evaluate against `activation` (read lazily). Raises `EvalError`."""
        return to_python(self.run(activation))

    def run(self, activation: Mapping[str, Any]) -> Any:
        """The result as an evaluator value (templates render it as text)."""
        return self._step(Evaluation(activation, self._max_iterations, self._slots))

    def __repr__(self) -> str:
        return f"Program({self.source!r})"


def compile_range(source: str, env: Env, start: int = 0, end: int | None = None) -> Program:
    """Compile ``source[start:end]``, locating errors in the whole `source`."""
    stop = len(source) if end is None else end
    if stop - start > env.max_source_length:
        raise PolicyExprError(
            f"expression longer than {env.max_source_length} characters", source, start
        )
    tree = parse(source, max_depth=env.max_depth, start=start, end=stop)
    checked, result_type = check(tree, source, env)
    return Program(
        source[start:stop], checked, env, str(result_type), frozenset(secret_reads(tree))
    )


def compile(source: str, *, env: Env | None = None) -> Program:
    """Parse and check `source`. Raises `PolicyExprError`."""
    if not isinstance(source, str):
        raise TypeError(f"source must be a str, not {type(source).__name__}")
    return compile_range(source, env or _DEFAULT_ENV)
