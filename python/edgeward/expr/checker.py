"""The gradual type checker (docs/cel.md §4.2): rejects what is certainly
wrong, and rewrites the tree for the evaluator (type names become type
values, objects used as values get an `OwnValue`, declared object fields are
marked). It never changes what a well-typed expression computes."""

from __future__ import annotations

from typing import Any, Final

from edgeward.expr import ast
from edgeward.expr.celtypes import (
    BOOL,
    DYN,
    INT,
    NUMERIC,
    STRING,
    TYPE,
    ObjectType,
    Type,
    assignable,
    comparable,
    join,
    list_of,
    map_of,
    value_type,
)
from edgeward.expr.env import Env
from edgeward.expr.errors import EvalError, PolicyExprError
from edgeward.expr.functions import Overload, Registry, registry
from edgeward.expr.values import TYPE_NAMES, TypeValue, kind

Checked = tuple[ast.Node, Type]

_LITERAL_TYPES: Final = {
    "null": Type("null"),
    "bool": BOOL,
    "int": INT,
    "uint": Type("uint"),
    "double": Type("double"),
    "string": STRING,
    "bytes": Type("bytes"),
    "type": TYPE,
}
_ARITHMETIC: Final = {"+": "_+_", "-": "_-_", "*": "_*_", "/": "_/_", "%": "_%_"}
_ORDERED: Final = frozenset({"string", "bytes", "bool", "timestamp", "duration"})
_KEY_TYPES: Final = frozenset({"dyn", "bool", "int", "uint", "string"})


def check(node: ast.Node, source: str, env: Env) -> tuple[ast.Node, Type]:
    """The rewritten tree of a parsed expression and the static type of its
    result, or `PolicyExprError`."""
    checker = _Checker(source, env)
    return checker.value(node)


class _Checker:
    def __init__(self, source: str, env: Env) -> None:
        self.source = source
        self.declarations = env.declarations
        self.secrets = env.secrets
        self.functions: Registry = registry()
        self.scopes: list[dict[str, Type]] = []

    def error(self, message: str, node: ast.Node) -> PolicyExprError:
        return PolicyExprError(message, self.source, node.pos)

    def value(self, node: ast.Node) -> Checked:
        """Check `node` where it is used as a value (objects stand for their
        own value or their map of fields)."""
        checked, t = self.check(node)
        if isinstance(t, ObjectType):
            return ast.OwnValue(checked.pos, checked, t.own is not None), value_type(t)
        return checked, t

    def check(self, node: ast.Node) -> Checked:
        if isinstance(node, ast.Literal):
            if isinstance(node.value, TypeValue):
                return node, TYPE
            return node, _LITERAL_TYPES.get(kind(node.value), DYN)
        if isinstance(node, ast.Ident):
            return self.ident(node)
        if isinstance(node, ast.Select):
            return self.select(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Index):
            return self.index(node)
        if isinstance(node, ast.ListExpr):
            elements = [self.value(e) for e in node.elements]
            return (
                ast.ListExpr(node.pos, tuple(e for e, _ in elements)),
                list_of(join([t for _, t in elements])),
            )
        if isinstance(node, ast.MapExpr):
            return self.map_literal(node)
        if isinstance(node, ast.Unary):
            return self.unary(node)
        if isinstance(node, ast.Binary):
            return self.binary(node)
        if isinstance(node, ast.Logic):
            operands = tuple(self.condition(o) for o in node.operands)
            return ast.Logic(node.pos, node.op, operands), BOOL
        if isinstance(node, ast.Conditional):
            condition = self.condition(node.condition)
            then, then_type = self.value(node.then)
            otherwise, otherwise_type = self.value(node.otherwise)
            return (
                ast.Conditional(node.pos, condition, then, otherwise),
                join([then_type, otherwise_type]),
            )
        if isinstance(node, ast.Comprehension):
            return self.comprehension(node)
        raise AssertionError(f"unexpected node {node!r}")

    def condition(self, node: ast.Node) -> ast.Node:
        checked, t = self.value(node)
        if t.name not in ("bool", "dyn"):
            raise self.error(f"expected a bool, found {t}", node)
        return checked

    # --- names --------------------------------------------------------------------------

    def variable_type(self, name: str) -> Type | None:
        """The type of a comprehension variable or declared variable."""
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        if self.declarations is not None:
            return self.declarations.get(name)
        return None

    def ident(self, node: ast.Ident) -> Checked:
        t = self.variable_type(node.name)
        if t is not None:
            return node, t
        if node.name in TYPE_NAMES:
            return ast.Literal(node.pos, TypeValue(node.name)), TYPE
        if self.declarations is None:
            return node, DYN
        raise self.error(f"undeclared reference to {node.name!r}", node)

    def select(self, node: ast.Select) -> Checked:
        qualified = _qualified(node)
        if (
            qualified in TYPE_NAMES
            and not node.test_only
            and self.variable_type(qualified.split(".")[0]) is None
        ):
            return ast.Literal(node.pos, TypeValue(qualified)), TYPE
        operand, t = self.check(node.operand)
        result_type = BOOL if node.test_only else DYN
        if isinstance(t, ObjectType):
            if node.field not in t.fields:
                raise self.error(f"undefined field {node.field!r}", node)
            field_type = t.fields[node.field]
            return (
                ast.Select(node.pos, operand, node.field, node.test_only, on_object=True),
                BOOL if node.test_only else field_type,
            )
        if t.name == "map":
            if t.params[0].name not in ("string", "dyn"):
                raise self.error(f"type '{t}' does not support field selection", node)
            if not node.test_only:
                result_type = t.params[1]
        elif t.name != "dyn":
            raise self.error(f"type '{t}' does not support field selection", node)
        return ast.Select(node.pos, operand, node.field, node.test_only), result_type

    # --- calls --------------------------------------------------------------------------

    def call(self, node: ast.Call) -> Checked:
        receiver = self.value(node.receiver) if node.receiver is not None else None
        args = [self.value(a) for a in node.args]
        checked_args = ([receiver] if receiver else []) + args
        types = tuple(t for _, t in checked_args)
        overloads = self.functions.lookup(node.function, receiver is not None, len(types))
        if not overloads:
            if self.functions.known(node.function, receiver is not None):
                raise self.error(
                    f"no overload of {node.function!r} takes {len(args)} argument"
                    f"{'' if len(args) == 1 else 's'}",
                    node,
                )
            raise self.error(f"undeclared reference to function {node.function!r}", node)
        matching = self.resolve(node, node.function, overloads, types, receiver is not None)
        self.check_constants(matching, [n for n, _ in checked_args])
        if node.function == "secrets.get":
            return self.secret(node, args[0][0], args[1][0]), STRING
        rewritten = ast.Call(
            node.pos,
            node.function,
            receiver[0] if receiver else None,
            tuple(a for a, _ in args),
        )
        return rewritten, join([o.result_type(types) for o in matching])

    def resolve(
        self,
        node: ast.Node,
        name: str,
        overloads: list[Overload],
        types: tuple[Type, ...],
        receiver: bool,
    ) -> list[Overload]:
        matching = [
            o
            for o in overloads
            if all(assignable(p, t) for p, t in zip(o.params, types, strict=True))
        ]
        if not matching:
            shown = ", ".join(str(t) for t in (types[1:] if receiver else types))
            target = f"{types[0]}." if receiver else ""
            raise self.error(
                f"found no matching overload for '{name}' applied to '{target}({shown})'", node
            )
        return matching

    def check_constants(self, overloads: list[Overload], args: list[ast.Node]) -> None:
        constants = [_constant(a) for a in args]
        if all(c is None for c in constants):
            return
        for o in overloads:
            if o.check_constants is None:
                continue
            try:
                o.check_constants(*constants)
            except EvalError as exc:
                at = next(a for a, c in zip(args, constants, strict=True) if c is not None)
                raise self.error(f"invalid constant argument: {exc.message}", at) from None

    def secret(self, node: ast.Call, vault: ast.Node, name: ast.Node) -> ast.Node:
        """`secrets.get` bound to the Env's table: with constant arguments,
        the value itself (an unknown secret is a compile error)."""
        if (
            self.secrets is not None
            and isinstance(vault, ast.Literal)
            and isinstance(name, ast.Literal)
            and isinstance(vault.value, str)
            and isinstance(name.value, str)
        ):
            value = self.secrets.get(vault.value, {}).get(name.value)
            if value is None:
                raise self.error(
                    f"invalid constant argument: no secret {name.value!r} in vault {vault.value!r}",
                    node,
                )
            return ast.Literal(node.pos, value)
        return ast.SecretLookup(node.pos, self.secrets, vault, name)

    def index(self, node: ast.Index) -> Checked:
        operand, t = self.value(node.operand)
        index, it = self.value(node.index)
        rewritten = ast.Index(node.pos, operand, index)
        if t.name == "list":
            if it.name not in ("int", "uint", "double", "dyn"):
                raise self.error(f"a list index must be a number, not {it}", node.index)
            return rewritten, t.params[0]
        if t.name == "map":
            if not comparable(t.params[0], it):  # a dyn key type takes any index
                raise self.error(f"a key of {t} cannot be {it}", node.index)
            return rewritten, t.params[1]
        if t.name == "dyn":
            return rewritten, DYN
        raise self.error(f"type '{t}' does not support indexing", node)

    def map_literal(self, node: ast.MapExpr) -> Checked:
        entries = []
        key_types, value_types = [], []
        for key, value in node.entries:
            checked_key, key_type = self.value(key)
            if key_type.name not in _KEY_TYPES:
                raise self.error(f"unsupported map key type '{key_type}'", key)
            checked_value, value_type_ = self.value(value)
            entries.append((checked_key, checked_value))
            key_types.append(key_type)
            value_types.append(value_type_)
        return (
            ast.MapExpr(node.pos, tuple(entries)),
            map_of(join(key_types), join(value_types)),
        )

    # --- operators ----------------------------------------------------------------------

    def unary(self, node: ast.Unary) -> Checked:
        if node.op == "!":
            return ast.Unary(node.pos, "!", self.condition(node.operand)), BOOL
        operand, t = self.value(node.operand)
        matching = self.resolve(node, "-_", self.functions.lookup("-_", False, 1), (t,), False)
        return ast.Unary(node.pos, "-", operand), join([o.result_type((t,)) for o in matching])

    def binary(self, node: ast.Binary) -> Checked:
        left, lt = self.value(node.left)
        right, rt = self.value(node.right)
        rewritten = ast.Binary(node.pos, node.op, left, right)
        op = node.op
        if op in _ARITHMETIC:
            name = _ARITHMETIC[op]
            overloads = self.functions.lookup(name, False, 2)
            matching = self.resolve(node, name, overloads, (lt, rt), False)
            return rewritten, join([o.result_type((lt, rt)) for o in matching])
        if op in ("==", "!="):
            if not comparable(lt, rt):
                raise self.error(f"cannot compare {lt} and {rt} with '{op}'", node)
            return rewritten, BOOL
        if op == "in":
            if rt.name in ("list", "map"):
                element = rt.params[0]
            elif rt.name == "dyn":
                element = DYN
            else:
                raise self.error(f"'in' needs a list or a map, not {rt}", node)
            if not comparable(lt, element):
                raise self.error(f"{lt} cannot be in {rt}", node)
            return rewritten, BOOL
        # < <= > >=
        if _ordered(lt, rt):
            return rewritten, BOOL
        raise self.error(f"cannot order {lt} and {rt} with '{op}'", node)

    # --- comprehensions -------------------------------------------------------------------

    def comprehension(self, node: ast.Comprehension) -> Checked:
        range_, rt = self.value(node.range)
        if node.macro == "sortBy" and rt.name == "map":
            raise self.error(f"sortBy() needs a list, not {rt}", node.range)
        if rt.name in ("list", "map"):
            var_type = rt.params[0]
        elif rt.name == "dyn":
            var_type = DYN
        else:
            raise self.error(f"{node.macro}() needs a list or a map, not {rt}", node.range)
        self.scopes.append({node.var: var_type})
        try:
            condition = self.condition(node.filter) if node.filter is not None else None
            if node.macro == "map":
                body, body_type = self.value(node.body)
                result = list_of(body_type)
            elif node.macro == "sortBy":
                body, _ = self.value(node.body)
                result = rt if rt.name == "list" else list_of(DYN)
            else:
                body = self.condition(node.body)
                result = list_of(var_type) if node.macro == "filter" else BOOL
        finally:
            self.scopes.pop()
        return ast.Comprehension(node.pos, node.macro, node.var, range_, body, condition), result


def _ordered(a: Type, b: Type) -> bool:
    if a.name == "dyn" and b.name == "dyn":
        return True
    if a.name in NUMERIC | {"dyn"} and b.name in NUMERIC | {"dyn"}:
        return True
    if a.name in _ORDERED and b.name in (a.name, "dyn"):
        return True
    return b.name in _ORDERED and a.name == "dyn"


def _qualified(node: ast.Node) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Select):
        parts.append(node.field)
        node = node.operand
    if not isinstance(node, ast.Ident):
        return ""
    parts.append(node.name)
    return ".".join(reversed(parts))


def _constant(node: ast.Node) -> Any:
    """The value of a literal, or a list of literals; None otherwise."""
    if isinstance(node, ast.Literal):
        return node.value
    if isinstance(node, ast.ListExpr) and all(isinstance(e, ast.Literal) for e in node.elements):
        return [e.value for e in node.elements if isinstance(e, ast.Literal)]
    return None


def references(node: ast.Node, scope: frozenset[str] = frozenset()) -> set[str]:
    """Variable paths an expression may read (docs/cel.md §9)."""
    path = _variable_path(node, scope)
    if path is not None:
        return {path}
    if isinstance(node, ast.Comprehension):
        inner = scope | {node.var}
        found = references(node.range, scope) | references(node.body, inner)
        if node.filter is not None:
            found |= references(node.filter, inner)
        return found
    found = set()
    for child in ast.children(node):
        found |= references(child, scope)
    return found


def _variable_path(node: ast.Node, scope: frozenset[str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Select):
        parts.append(node.field)
        node = node.operand
    if not isinstance(node, ast.Ident) or node.name in scope:
        return None
    parts.append(node.name)
    return ".".join(reversed(parts))


def secret_reads(node: ast.Node) -> set[tuple[str | None, str | None]]:
    """The (vault, name) pairs `secrets.get` reads; None for an argument
    computed at run time. A constant read the Env resolved is not in the
    tree any more: `Program.secrets_read` comes from the parsed tree."""
    found: set[tuple[str | None, str | None]] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        if (
            isinstance(current, ast.Call)
            and current.function == "secrets.get"
            and current.receiver is None
            and len(current.args) == 2
        ):
            vault, name = (_text_literal(a) for a in current.args)
            found.add((vault, name))
        stack.extend(ast.children(current))
    return found


def _text_literal(node: ast.Node) -> str | None:
    if isinstance(node, ast.Literal) and isinstance(node.value, str):
        return node.value
    return None
