"""The function table: every overload with its static signature (for the
checker) and its implementation (for the evaluator), plus the names the
parser must know (namespaced functions, helpers with an implicit argument).

An overload's parameter types double as its runtime dispatch: a parameter
of type ``dyn`` accepts any value, any other accepts values of that kind
(``list(string)`` accepts any list). At run time the first overload of the
name/style/arity whose kinds match the arguments runs (docs/cel.md §4, §11).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from edgeward.expr.celtypes import Type, parse_type

ResultType = Type | Callable[[tuple[Type, ...]], Type]


@dataclass(frozen=True, slots=True)
class Overload:
    name: str
    receiver: bool  # called as `a.f(...)`; the receiver is the first parameter
    params: tuple[Type, ...]
    result: ResultType
    impl: Callable[..., Any]
    # Checks constant arguments at compile time (a literal regex, CIDR, zone):
    # called with the literal values (None where not constant); raises EvalError.
    check_constants: Callable[..., None] | None = None

    @property
    def kinds(self) -> tuple[str | None, ...]:
        return tuple(None if p.name == "dyn" else p.name for p in self.params)

    def result_type(self, args: tuple[Type, ...]) -> Type:
        return self.result(args) if callable(self.result) else self.result


def overload(
    name: str,
    params: str | Iterable[str],
    result: str | Callable[[tuple[Type, ...]], Type],
    impl: Callable[..., Any],
    *,
    receiver: bool = False,
    check_constants: Callable[..., None] | None = None,
) -> Overload:
    """An overload from the compact table syntax: type strings, ``A`` = dyn."""
    names = [params] if isinstance(params, str) else list(params)
    types = tuple(parse_type("dyn" if p == "A" else p, name) for p in names if p)
    return Overload(
        name,
        receiver,
        types,
        parse_type(result, name) if isinstance(result, str) else result,
        impl,
        check_constants,
    )


class Registry:
    """Overloads by (name, receiver style, number of arguments incl. receiver)."""

    def __init__(self, overloads: Iterable[Overload]) -> None:
        self._by_key: dict[tuple[str, bool, int], list[Overload]] = {}
        self._names: set[tuple[str, bool]] = set()
        for o in overloads:
            self._by_key.setdefault((o.name, o.receiver, len(o.params)), []).append(o)
            self._names.add((o.name, o.receiver))

    def lookup(self, name: str, receiver: bool, arity: int) -> list[Overload]:
        return self._by_key.get((name, receiver, arity), [])

    def known(self, name: str, receiver: bool) -> bool:
        return (name, receiver) in self._names

    def names(self) -> set[str]:
        return {name for name, _ in self._names}


def _build() -> Registry:
    from edgeward.expr import lib_core, lib_lists, lib_policy, lib_strings

    return Registry(
        [*lib_core.OVERLOADS, *lib_strings.OVERLOADS, *lib_lists.OVERLOADS, *lib_policy.OVERLOADS]
    )


# Namespaced global functions: `base64.encode(x)` is the function
# "base64.encode", whatever variables are declared (docs/cel.md §11).
QUALIFIED_FUNCTIONS: Final = frozenset(
    {
        "strings.quote",
        "lists.range",
        "base64.encode",
        "base64.decode",
        "basic_auth.encode",
        "url.escape",
        "url.unescape",
        "json.encode",
        "json.decode",
        "queryString.encode",
        "queryString.decode",
        "hash.md5",
        "hash.sha1",
        "hash.sha256",
        "hash.sha512",
        "hash.crc32",
        "hash.crc64",
        "rand.double",
        "rand.int",
        "secrets.get",
    }
)

# Gateway helpers that read a variable: `getReqHeader(n)` is expanded by the
# parser into `getReqHeader(req.headers, n)` (key: name and written arity).
IMPLICIT_ARGUMENTS: Final[dict[tuple[str, int], tuple[str, ...]]] = {
    ("getReqHeader", 1): ("req", "headers"),
    ("hasReqHeader", 1): ("req", "headers"),
    ("getQueryParam", 1): ("req", "url", "query_params"),
    ("hasQueryParam", 1): ("req", "url", "query_params"),
    ("getReqCookie", 1): ("req", "cookies"),
    ("hasReqCookie", 1): ("req", "cookies"),
    ("getResHeader", 1): ("res", "headers"),
    ("hasResHeader", 1): ("res", "headers"),
    ("getResCookie", 1): ("res", "cookies"),
    ("hasResCookie", 1): ("res", "cookies"),
    ("secrets.get", 2): ("secrets",),
}


@functools.cache
def registry() -> Registry:
    """The table of every function (built on first use: the libraries import
    this module)."""
    return _build()
