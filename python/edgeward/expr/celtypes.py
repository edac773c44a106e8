"""Static types of the checker and the `Env` type syntax (docs/cel.md §4).

A type is a `Type` (a name and parameters: ``list(int)``, ``map(string,
dyn)``) or an `ObjectType` (fixed fields, optionally an own value type) that
`Env(variables=...)` declares with a dict."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class Type:
    name: str
    params: tuple[Type, ...] = ()

    def __str__(self) -> str:
        if self.params:
            return f"{self.name}({', '.join(str(p) for p in self.params)})"
        return self.name


@dataclass(frozen=True, slots=True, eq=False)
class ObjectType(Type):
    """An object with fixed fields; `own` is the scalar type it also is
    (``req.url`` is a string with fields), or None."""

    fields: Mapping[str, Type] = field(default_factory=dict)
    own: Type | None = None
    path: str = ""

    def __str__(self) -> str:
        return f"object {self.path}" if self.path else "object"

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)


DYN: Final = Type("dyn")
NULL: Final = Type("null")
BOOL: Final = Type("bool")
INT: Final = Type("int")
UINT: Final = Type("uint")
DOUBLE: Final = Type("double")
STRING: Final = Type("string")
BYTES: Final = Type("bytes")
TIMESTAMP: Final = Type("timestamp")
DURATION: Final = Type("duration")
TYPE: Final = Type("type")
PRIMITIVES: Final = {
    t.name: t
    for t in (DYN, NULL, BOOL, INT, UINT, DOUBLE, STRING, BYTES, TIMESTAMP, DURATION, TYPE)
}
NUMERIC: Final = frozenset({"int", "uint", "double"})


def list_of(elem: Type) -> Type:
    return Type("list", (elem,))


def map_of(key: Type, value: Type) -> Type:
    return Type("map", (key, value))


LIST_DYN: Final = list_of(DYN)
MAP_DYN: Final = map_of(DYN, DYN)
FIELDS_MAP: Final = map_of(STRING, DYN)


def value_type(t: Type) -> Type:
    """The type an expression has where it is used as a value: an object stands
    for its own value, or for the map of its fields."""
    if isinstance(t, ObjectType):
        return t.own if t.own is not None else FIELDS_MAP
    return t


def assignable(param: Type, arg: Type) -> bool:
    """Gradual matching: `dyn` on either side matches; otherwise same name and
    pairwise assignable parameters."""
    if param.name == "dyn" or arg.name == "dyn":
        return True
    if param.name != arg.name or len(param.params) != len(arg.params):
        return False
    return all(assignable(p, a) for p, a in zip(param.params, arg.params, strict=True))


def comparable(a: Type, b: Type) -> bool:
    """May `a == b` be true for some values (docs/cel.md §4.2 rule 5)?"""
    if a.name in ("dyn", "null") or b.name in ("dyn", "null"):
        return True
    if a.name in NUMERIC and b.name in NUMERIC:
        return True
    if a.name in ("list", "map"):
        return a.name == b.name
    return a == b


def join(types: list[Type]) -> Type:
    """The common type of literal elements or branches: the type if they all
    agree, else `dyn`."""
    if not types:
        return DYN
    first = types[0]
    return first if all(t == first for t in types[1:]) else DYN


# --- the Env syntax ----------------------------------------------------------------------

_TOKEN: Final = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*|[(),])")


def parse_type(text: str, where: str = "") -> Type:
    """``"int"``, ``"list(string)"``, ``"map(string, list(int))"``..."""
    tokens: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"{where}: malformed type {text!r}")
        tokens.append(m.group(1))
        pos = m.end()

    def parse(i: int) -> tuple[Type, int]:
        if i >= len(tokens):
            raise ValueError(f"{where}: malformed type {text!r}")
        name = tokens[i]
        if name in ("list", "map") and i + 1 < len(tokens) and tokens[i + 1] == "(":
            params = []
            i += 2
            while True:
                param, i = parse(i)
                params.append(param)
                if i < len(tokens) and tokens[i] == ",":
                    i += 1
                    continue
                if i < len(tokens) and tokens[i] == ")":
                    i += 1
                    break
                raise ValueError(f"{where}: malformed type {text!r}")
            if len(params) != (1 if name == "list" else 2):
                raise ValueError(f"{where}: {name} takes {1 if name == 'list' else 2} types")
            return Type(name, tuple(params)), i
        if name == "list":
            return LIST_DYN, i + 1
        if name == "map":
            return MAP_DYN, i + 1
        if name not in PRIMITIVES:
            raise ValueError(f"{where}: unknown type {name!r}")
        return PRIMITIVES[name], i + 1

    t, end = parse(0)
    if end != len(tokens):
        raise ValueError(f"{where}: malformed type {text!r}")
    if t.name == "map" and t.params[0].name not in ("dyn", "bool", "int", "uint", "string"):
        raise ValueError(f"{where}: unsupported map key type {t.params[0]}")
    return t


def declare(spec: Any, path: str) -> Type:
    """A declared type from the `Env(variables=...)` syntax: a type string or
    a dict of fields (key ``""`` = the object's own value type)."""
    if isinstance(spec, str):
        return parse_type(spec, path)
    if isinstance(spec, Mapping):
        fields: dict[str, Type] = {}
        own = None
        for name, sub in spec.items():
            if not isinstance(name, str):
                raise ValueError(f"{path}: field names must be strings, not {name!r}")
            if name == "":
                own = declare(sub, f"{path}.<own value>")
                if isinstance(own, ObjectType):
                    raise ValueError(f"{path}: the own value must be a type string")
            else:
                fields[name] = declare(sub, f"{path}.{name}")
        return ObjectType("object", (), fields, own, path)
    raise ValueError(f"{path}: a type is a string or a dict, not {type(spec).__name__}")
