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
        "hash.xxhash64",
        "url.parse",
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
}

# The names only the pricing page lists (traffic-policy-reference §2.7) whose
# meaning is clear from the name: alias -> (canonical function, whether the
# alias's first argument is the canonical function's receiver). The parser
# rewrites the call; nothing is implemented twice (docs/cel.md §11.5).
ALIASES: Final[dict[str, tuple[str, bool]]] = {
    "b64.decode": ("base64.decode", False),
    "b64.encode": ("base64.encode", False),
    "security.secret": ("secrets.get", False),
    "utility.base64_decode": ("base64.decode", False),
    "utility.base64_encode": ("base64.encode", False),
    "utility.basic_auth_encode": ("basic_auth.encode", False),
    "utility.in_cidr_range": ("inCidrRange", False),
    "utility.in_cidr_ranges": ("inCidrRanges", False),
    "utility.json_decode": ("json.decode", False),
    "utility.json_encode": ("json.encode", False),
    "utility.list_encode_json": ("encodeJson", True),
    "utility.object_encode_json": ("encodeJson", True),
    "utility.object_encode_query_string": ("encodeQueryString", True),
    "utility.query_string_decode": ("queryString.decode", False),
    "utility.query_string_encode": ("queryString.encode", False),
    "utility.rand_double": ("rand.double", False),
    "utility.rand_int": ("rand.int", False),
    "utility.string_decode_base64": ("decodeBase64", True),
    "utility.string_decode_json": ("decodeJson", True),
    "utility.string_decode_query_string": ("decodeQueryString", True),
    "utility.string_encode_base64": ("encodeBase64", True),
    "utility.string_escape_url": ("escapeUrl", True),
    "utility.string_is_json": ("isJson", True),
    "utility.string_is_query_string": ("isQueryString", True),
    "utility.string_is_url": ("isURL", True),
    "utility.string_parse_url": ("parseUrl", True),
    "utility.string_unescape_url": ("unescapeUrl", True),
    "utility.url_escape": ("url.escape", False),
    "utility.url_parse": ("url.parse", False),
    "utility.url_unescape": ("url.unescape", False),
}

# Pricing-page names that read one variable: `http.path()` is `req.url.path`.
VARIABLE_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "http.path": ("req", "url", "path"),
    "http.query": ("req", "url", "query"),
    "http.request_method": ("req", "method"),
    "http.request_uri": ("req", "url", "uri"),
    "http.scheme": ("req", "url", "scheme"),
    "http.status": ("res", "status_code"),
    "http.user_agent": ("req", "user_agent"),
}


def is_qualified(name: str) -> bool:
    """Whether `a.b(...)` names a global function (or an alias of one)."""
    return name in QUALIFIED_FUNCTIONS or name in ALIASES or name in VARIABLE_ALIASES


@functools.cache
def registry() -> Registry:
    """The table of every function (built on first use: the libraries import
    this module)."""
    return _build()
