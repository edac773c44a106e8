"""A subset of cel-go's lists extension (docs/cel.md §11.3)."""

from __future__ import annotations

import functools
import math
from typing import Any, Final

from edgeward.expr.celtypes import DYN, Type, list_of
from edgeward.expr.errors import EvalError
from edgeward.expr.functions import overload
from edgeward.expr.values import (
    MAX_SIZE,
    check_depth,
    check_length,
    compare,
    equals,
    kind,
    list_items,
)


def _same(args: tuple[Type, ...]) -> Type:
    return args[0]


def slice_list(items: Any, start: int, end: int) -> list[Any]:
    if start < 0 or end < 0 or start > end or end > len(items):
        raise EvalError(
            "invalid_argument", f"cannot slice({start}, {end}) of {len(items)} elements"
        )
    return [items[i] for i in range(start, end)]


def flatten(items: Any, depth: int = 1) -> list[Any]:
    if depth < 0:
        raise EvalError("invalid_argument", "flatten depth must be non-negative")
    out: list[Any] = []
    _flatten_into(items, depth, 0, out)
    return out


def _flatten_into(items: Any, depth: int, level: int, out: list[Any]) -> None:
    """Bounded like every walk of a whole value: nesting, and the result's
    length as it grows."""
    check_depth(level)
    for item in list_items(items):
        if depth > 0 and kind(item) == "list":
            _flatten_into(item, depth - 1, level + 1, out)
        else:
            check_length(len(out) + 1)
            out.append(item)


def _identity_key(value: Any) -> tuple[str, Any] | None:
    """A hashable key equal for CEL-equal scalars; None for lists/maps/NaN."""
    k = kind(value)
    if k in ("int", "uint", "double"):
        if isinstance(value, float) and math.isnan(value):
            return None
        return ("n", value)  # Python: 1 == 1.0 == UInt(1), same hash
    if k in ("list", "map"):
        return None
    return (k, value)


def distinct(items: Any) -> list[Any]:
    """Elements in order, dropping any equal (CEL `==`) to an earlier one."""
    seen: set[tuple[str, Any]] = set()
    kept_composites: list[Any] = []
    out = []
    for item in list_items(items):
        key = _identity_key(item)
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        elif kind(item) in ("list", "map"):
            if any(equals(item, other) for other in kept_composites):
                continue
            kept_composites.append(item)
        out.append(item)
    return out


_SORT_GROUPS: Final = {
    "int": "number",
    "uint": "number",
    "double": "number",
    "string": "string",
    "bytes": "bytes",
    "bool": "bool",
    "timestamp": "timestamp",
    "duration": "duration",
}


def _check_sortable(values: list[Any]) -> None:
    groups = {_SORT_GROUPS.get(kind(v)) for v in values}
    if None in groups or len(groups) > 1:
        raise EvalError("invalid_argument", "list elements must be comparable")
    if any(isinstance(v, float) and math.isnan(v) for v in values):
        raise EvalError("invalid_argument", "cannot sort NaN")


def sort_list(items: Any) -> list[Any]:
    values = list(list_items(items))
    _check_sortable(values)
    return sorted(values)


def sort_by_keys(elements: list[Any], keys: list[Any]) -> list[Any]:
    """`list.sortBy(x, key)`: the elements in the (stable) order of their
    keys, which must be sortable as `sort()` requires."""
    _check_sortable(keys)

    def by_key(a: int, b: int) -> int:
        return compare(keys[a], keys[b])

    order = sorted(range(len(keys)), key=functools.cmp_to_key(by_key))
    return [elements[i] for i in order]


def range_list(n: int) -> list[int]:
    if n > MAX_SIZE:
        raise EvalError("limit", f"lists.range({n}) is longer than {MAX_SIZE}")
    return list(range(max(n, 0)))


OVERLOADS: Final = [
    overload("slice", ("list", "int", "int"), _same, slice_list, receiver=True),
    overload("flatten", "list", lambda _: list_of(DYN), flatten, receiver=True),
    overload("flatten", ("list", "int"), lambda _: list_of(DYN), flatten, receiver=True),
    overload("distinct", "list", _same, distinct, receiver=True),
    overload("sort", "list", _same, sort_list, receiver=True),
    overload("lists.range", "int", "list(int)", range_list),
]
