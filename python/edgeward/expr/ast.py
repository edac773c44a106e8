"""The CEL syntax tree (docs/cel.md §3).

Nodes are frozen dataclasses; `pos` is a code point offset in the compiled
text for error locations: the operator of `Binary` and `Conditional` (`?`),
the field name of `Select`, the function name of `Call`, the `[` of
`Index`, the first token of everything else. The parser builds
them with macros already expanded; the checker returns a rewritten tree in
which identifiers naming types are `Literal` type values, objects used as
values are wrapped in `OwnValue`, and selections of declared object fields
are marked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Node:
    pos: int


@dataclass(frozen=True, slots=True)
class Literal(Node):
    value: Any  # an evaluator value (see values.py)


@dataclass(frozen=True, slots=True)
class Ident(Node):
    name: str


@dataclass(frozen=True, slots=True)
class Select(Node):
    operand: Node
    field: str
    test_only: bool = False  # has(operand.field)
    on_object: bool = False  # set by the checker: a declared object field


@dataclass(frozen=True, slots=True)
class Call(Node):
    function: str  # qualified for namespaced functions: "base64.encode"
    receiver: Node | None  # a.f(x): receiver a; f(x): None
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Index(Node):
    operand: Node
    index: Node


@dataclass(frozen=True, slots=True)
class ListExpr(Node):
    elements: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class MapExpr(Node):
    entries: tuple[tuple[Node, Node], ...]


@dataclass(frozen=True, slots=True)
class Unary(Node):
    op: str  # "!" or "-"
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary(Node):
    op: str  # + - * / % == != < <= > >= in
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Logic(Node):
    op: str  # "&&" or "||"
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Conditional(Node):
    condition: Node
    then: Node
    otherwise: Node


@dataclass(frozen=True, slots=True)
class SecretLookup(Node):
    """(made by the checker) `secrets.get(vault, name)` bound to the Env's
    secrets table (None: the Env has none)."""

    table: Mapping[str, Mapping[str, str]] | None = field(repr=False, compare=False)
    vault: Node
    name: Node


@dataclass(frozen=True, slots=True)
class Comprehension(Node):
    macro: str  # all exists exists_one map filter sortBy
    var: str
    range: Node
    body: Node  # the predicate, the transform of map, or the key of sortBy
    filter: Node | None = None  # the predicate of 3-argument map


@dataclass(frozen=True, slots=True)
class OwnValue(Node):
    """An object used as a value: its own value (key ``""``) when it declares
    one (`own`), else the Mapping of its fields."""

    operand: Node
    own: bool


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-expressions of `node`, in evaluation order."""
    if isinstance(node, Select | Unary | OwnValue):
        return (node.operand,)
    if isinstance(node, Call):
        return ((node.receiver,) if node.receiver else ()) + node.args
    if isinstance(node, Index):
        return (node.operand, node.index)
    if isinstance(node, ListExpr):
        return node.elements
    if isinstance(node, MapExpr):
        return tuple(part for entry in node.entries for part in entry)
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, Logic):
        return node.operands
    if isinstance(node, Conditional):
        return (node.condition, node.then, node.otherwise)
    if isinstance(node, Comprehension):
        return (node.range, node.body) + ((node.filter,) if node.filter else ())
    if isinstance(node, SecretLookup):
        return (node.vault, node.name)
    return ()
