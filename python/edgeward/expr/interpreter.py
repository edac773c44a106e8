"""The evaluator: a checked tree is turned once into nested closures, each
taking the per-evaluation state and returning a value or raising `EvalError`
(docs/cel.md §5-§7). Every operation dispatches on the runtime values."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Final

from edgeward.expr import ast
from edgeward.expr.errors import EvalError
from edgeward.expr.functions import Overload, registry
from edgeward.expr.lib_lists import sort_by_keys
from edgeward.expr.values import (
    CelMap,
    compare,
    equals,
    from_python,
    kind,
    list_items,
    map_keys,
    map_lookup,
    missing,
    type_name,
)


class Evaluation:
    """The state of one `Program.evaluate` call."""

    __slots__ = ("activation", "iterations", "max_iterations", "slots")

    def __init__(self, activation: Mapping[str, Any], max_iterations: int, slots: int) -> None:
        self.activation = activation
        self.iterations = 0
        self.max_iterations = max_iterations
        self.slots: list[Any] = [None] * slots

    def iterate(self, count: int = 1) -> None:
        self.iterations += count
        if self.iterations > self.max_iterations:
            raise EvalError("limit", f"more than {self.max_iterations} comprehension iterations")


Step = Callable[[Evaluation], Any]

_ARITHMETIC: Final = {"+": "_+_", "-": "_-_", "*": "_*_", "/": "_/_", "%": "_%_"}


def no_overload(name: str, args: list[Any]) -> EvalError:
    shown = ", ".join(type_name(a) for a in args)
    return EvalError("no_such_overload", f"no matching overload for '{name}' applied to ({shown})")


class Compiler:
    """Turns a checked tree into a `Step`; `slots` counts comprehension
    variables (each comprehension owns one slot)."""

    def __init__(self) -> None:
        self.slots = 0
        self.functions = registry()

    def compile(self, node: ast.Node, scope: dict[str, int] | None = None) -> Step:
        scope = scope or {}
        method = getattr(self, f"_{type(node).__name__}")
        step: Step = method(node, scope)
        return step

    # --- leaves -----------------------------------------------------------------------

    def _Literal(self, node: ast.Literal, scope: dict[str, int]) -> Step:
        value = node.value
        return lambda e: value

    def _Ident(self, node: ast.Ident, scope: dict[str, int]) -> Step:
        name = node.name
        if name in scope:
            slot = scope[name]
            return lambda e: e.slots[slot]

        def variable(e: Evaluation) -> Any:
            try:
                value = e.activation[name]
            except KeyError:
                raise EvalError("unbound", f"no value for variable {name!r}") from None
            return from_python(value)

        return variable

    # --- selection and indexing ---------------------------------------------------------

    def _Select(self, node: ast.Select, scope: dict[str, int]) -> Step:
        operand = self.compile(node.operand, scope)
        field = node.field
        absent = "no_such_field" if node.on_object else "no_such_key"

        if node.test_only:

            def has(e: Evaluation) -> bool:
                container = operand(e)
                if kind(container) != "map":
                    raise EvalError("no_such_overload", f"has() on a {type_name(container)}")
                return not missing(map_lookup(container, field))

            return has

        def select(e: Evaluation) -> Any:
            container = operand(e)
            if kind(container) != "map":
                raise EvalError(
                    "no_such_overload", f"a {type_name(container)} has no field {field!r}"
                )
            found = map_lookup(container, field)
            if missing(found):
                raise EvalError(absent, f"no such key: {field!r}")
            return from_python(found)

        return select

    def _OwnValue(self, node: ast.OwnValue, scope: dict[str, int]) -> Step:
        operand = self.compile(node.operand, scope)
        if not node.own:
            return operand

        def own_value(e: Evaluation) -> Any:
            value = operand(e)
            if kind(value) != "map":
                return value  # the caller gave the plain value
            found = map_lookup(value, "")
            if missing(found):
                raise EvalError("no_such_field", "the object has no own value (key '')")
            return from_python(found)

        return own_value

    def _Index(self, node: ast.Index, scope: dict[str, int]) -> Step:
        operand = self.compile(node.operand, scope)
        index = self.compile(node.index, scope)

        def lookup(e: Evaluation) -> Any:
            container = operand(e)
            key = index(e)
            k = kind(container)
            if k == "list":
                return from_python(container[_list_index(key, len(container))])
            if k == "map":
                found = map_lookup(container, key)
                if missing(found):
                    raise EvalError("no_such_key", "no such key")
                return from_python(found)
            raise no_overload("_[_]", [container, key])

        return lookup

    # --- literals ------------------------------------------------------------------------

    def _ListExpr(self, node: ast.ListExpr, scope: dict[str, int]) -> Step:
        elements = [self.compile(x, scope) for x in node.elements]
        return lambda e: [element(e) for element in elements]

    def _MapExpr(self, node: ast.MapExpr, scope: dict[str, int]) -> Step:
        entries = [(self.compile(k, scope), self.compile(v, scope)) for k, v in node.entries]
        return lambda e: CelMap.build([(key(e), value(e)) for key, value in entries])

    # --- calls and operators ---------------------------------------------------------------

    def _Call(self, node: ast.Call, scope: dict[str, int]) -> Step:
        args = ([node.receiver] if node.receiver is not None else []) + list(node.args)
        steps = [self.compile(a, scope) for a in args]
        overloads = self.functions.lookup(node.function, node.receiver is not None, len(steps))
        call = _dispatch(node.function, overloads, steps)
        if node.function != "lists.range":
            return call

        def counted_range(e: Evaluation) -> Any:
            # Each element counts as one iteration, as the native twin counts.
            result = call(e)
            e.iterate(len(result))
            return result

        return counted_range

    def _SecretLookup(self, node: ast.SecretLookup, scope: dict[str, int]) -> Step:
        vault_step = self.compile(node.vault, scope)
        name_step = self.compile(node.name, scope)
        table = node.table

        def secret(e: Evaluation) -> Any:
            vault, name = vault_step(e), name_step(e)
            if kind(vault) != "string" or kind(name) != "string":
                raise no_overload("secrets.get", [vault, name])
            if table is None:
                raise EvalError("unbound", f"no secrets are configured (secret {vault}/{name})")
            value = table.get(vault, {}).get(name)
            if value is None:
                raise EvalError("no_such_key", f"no secret {name!r} in vault {vault!r}")
            return value

        return secret

    def _Unary(self, node: ast.Unary, scope: dict[str, int]) -> Step:
        operand = self.compile(node.operand, scope)
        if node.op == "-":
            return _dispatch("-_", self.functions.lookup("-_", False, 1), [operand])

        def negate(e: Evaluation) -> bool:
            value = operand(e)
            if value is True or value is False:
                return not value
            raise no_overload("!_", [value])

        return negate

    def _Binary(self, node: ast.Binary, scope: dict[str, int]) -> Step:
        left = self.compile(node.left, scope)
        right = self.compile(node.right, scope)
        op = node.op
        if op in _ARITHMETIC:
            name = _ARITHMETIC[op]
            return _dispatch(name, self.functions.lookup(name, False, 2), [left, right])
        if op == "==":
            return lambda e: equals(left(e), right(e))
        if op == "!=":
            return lambda e: not equals(left(e), right(e))
        if op == "in":

            def contains(e: Evaluation) -> bool:
                item = left(e)
                container = right(e)
                k = kind(container)
                if k == "list":
                    return any(equals(item, x) for x in list_items(container))
                if k == "map":
                    return not missing(map_lookup(container, item))
                raise no_overload("@in", [item, container])

            return contains
        test = _ORDER_TESTS[op]

        def order(e: Evaluation) -> bool:
            return test(compare(left(e), right(e)))

        return order

    def _Logic(self, node: ast.Logic, scope: dict[str, int]) -> Step:
        operands = [self.compile(o, scope) for o in node.operands]
        decisive: bool = node.op == "||"  # the value that decides the result at once

        def logic(e: Evaluation) -> bool:
            error: EvalError | None = None
            for operand in operands:
                try:
                    value = operand(e)
                except EvalError as exc:
                    error = error or exc
                    continue
                if value is decisive:
                    return bool(value)
                if value is not (not decisive):
                    error = error or no_overload(node.op, [value])
            if error is not None:
                raise error
            return not decisive

        return logic

    def _Conditional(self, node: ast.Conditional, scope: dict[str, int]) -> Step:
        condition = self.compile(node.condition, scope)
        then = self.compile(node.then, scope)
        otherwise = self.compile(node.otherwise, scope)

        def conditional(e: Evaluation) -> Any:
            value = condition(e)
            if value is True:
                return then(e)
            if value is False:
                return otherwise(e)
            raise no_overload("_?_:_", [value])

        return conditional

    # --- comprehensions ---------------------------------------------------------------

    def _Comprehension(self, node: ast.Comprehension, scope: dict[str, int]) -> Step:
        range_ = self.compile(node.range, scope)
        slot = self.slots
        self.slots += 1
        inner = {**scope, node.var: slot}
        body = self.compile(node.body, inner)
        condition = self.compile(node.filter, inner) if node.filter is not None else None
        macro = node.macro

        def items(e: Evaluation) -> Any:
            container = range_(e)
            k = kind(container)
            if k == "list":
                return list_items(container)
            if k == "map" and macro != "sortBy":
                return map_keys(container)
            raise no_overload(macro, [container])

        if macro == "sortBy":

            def sort_by(e: Evaluation) -> list[Any]:
                elements = []
                keys = []
                for item in items(e):
                    e.iterate()
                    e.slots[slot] = item
                    elements.append(item)
                    keys.append(body(e))
                return sort_by_keys(elements, keys)

            return sort_by

        def predicate(e: Evaluation, step: Step) -> bool:
            value = step(e)
            if value is True or value is False:
                return value
            raise no_overload(macro, [value])

        if macro in ("all", "exists"):
            decisive: bool = macro == "exists"

            def quantifier(e: Evaluation) -> bool:
                error: EvalError | None = None
                for item in items(e):
                    e.iterate()
                    e.slots[slot] = item
                    try:
                        if predicate(e, body) is decisive:
                            return decisive
                    except EvalError as exc:
                        error = error or exc
                if error is not None:
                    raise error
                return not decisive

            return quantifier

        if macro == "exists_one":

            def exists_one(e: Evaluation) -> bool:
                count = 0
                for item in items(e):
                    e.iterate()
                    e.slots[slot] = item
                    count += predicate(e, body)
                return count == 1

            return exists_one

        if macro == "filter":

            def filter_(e: Evaluation) -> list[Any]:
                out = []
                for item in items(e):
                    e.iterate()
                    e.slots[slot] = item
                    if predicate(e, body):
                        out.append(item)
                return out

            return filter_

        def map_(e: Evaluation) -> list[Any]:
            out = []
            for item in items(e):
                e.iterate()
                e.slots[slot] = item
                if condition is None or predicate(e, condition):
                    out.append(body(e))
            return out

        return map_


_ORDER_TESTS: Final[dict[str, Callable[[int], bool]]] = {
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}


def _list_index(key: Any, size: int) -> int:
    k = kind(key)
    if k in ("int", "uint") or (k == "double" and math.isfinite(key) and key == int(key)):
        i = int(key)
    else:
        raise EvalError("invalid_argument", f"invalid list index {key!r}")
    if not 0 <= i < size:
        raise EvalError("invalid_argument", f"index {i} out of range for a list of {size}")
    return i


def _dispatch(name: str, overloads: list[Overload], steps: list[Step]) -> Step:
    """A call: evaluate the arguments left to right, run the first overload
    whose kinds match."""
    table = [(o.kinds, o.impl) for o in overloads]

    def call(e: Evaluation) -> Any:
        args = [step(e) for step in steps]
        kinds = [kind(a) for a in args]
        for params, impl in table:
            if all(p is None or p == k for p, k in zip(params, kinds, strict=True)):
                return impl(*args)
        raise no_overload(name, args)

    return call
