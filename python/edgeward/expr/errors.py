"""The two exceptions of edgeward's CEL: a located compile error and a
runtime error value that reached the caller.

`EvalError.kind` is one of `KINDS`; the agreement tests compare kinds, never
messages (docs/cel.md §6 says which operation raises which kind)."""

from __future__ import annotations

from typing import Final

KINDS: Final = frozenset(
    {
        "no_such_key",
        "no_such_field",
        "no_such_overload",
        "division_by_zero",
        "modulus_by_zero",
        "overflow",
        "range",
        "invalid_argument",
        "conversion",
        "regex",
        "limit",
        "unbound",
    }
)


class PolicyExprError(ValueError):
    """A parse or check error, located in the source (1-based line and column,
    columns in code points)."""

    def __init__(self, message: str, source: str, offset: int) -> None:
        self.message = message
        self.source = source
        self.line, self.column = line_column(source, offset)
        super().__init__(f"{self.line}:{self.column}: {message}")

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_policy_error, (self.message, self.source, self.line, self.column))


def _rebuild_policy_error(message: str, source: str, line: int, column: int) -> PolicyExprError:
    error = PolicyExprError.__new__(PolicyExprError)
    ValueError.__init__(error, f"{line}:{column}: {message}")
    error.message, error.source, error.line, error.column = message, source, line, column
    return error


class EvalError(Exception):
    """A CEL runtime error value reaching the caller."""

    def __init__(self, kind: str, message: str) -> None:
        assert kind in KINDS, kind
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __reduce__(self) -> tuple[object, ...]:
        return (EvalError, (self.kind, self.message))


def line_column(source: str, offset: int) -> tuple[int, int]:
    """1-based line and column of code point `offset` in `source`."""
    offset = max(0, min(offset, len(source)))
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return line, column
