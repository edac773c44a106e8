"""CEL values as the evaluator sees them, and their Python mapping.

Inside the evaluator a CEL value is a plain Python object: ``None``, `bool`,
`int` (CEL int), `UInt`, `float`, `str`, `bytes`, a `list`/`tuple`, a
`Mapping` (a `CelMap` built by CEL or any Mapping from the activation), a
`Timestamp`, a `Duration` or a `TypeValue`. Values coming from the caller go
through `from_python` when they are *read* (lazily, element by element), and
results go back through `to_python` (docs/cel.md §5).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterator, Mapping, Sized
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from edgeward.expr.errors import EvalError

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
UINT64_MAX: Final = 2**64 - 1
MAX_SIZE: Final = 2**20  # longest string/bytes/list an operation may build
# Whole-value walks (equality, json.encode, %s text, flatten, to_python)
# descend at most this many list/map levels: values from the caller can nest
# arbitrarily, and the native twin must not recurse without bound.
MAX_VALUE_DEPTH: Final = 100

NANOS: Final = 1_000_000_000
# 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999999Z in seconds.
TIMESTAMP_MIN_S: Final = -62135596800
TIMESTAMP_MAX_S: Final = 253402300799


class UInt(int):
    """A CEL ``uint``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"UInt({int(self)})"


@dataclass(frozen=True, slots=True, order=True)
class Timestamp:
    """A point in time, nanoseconds since the Unix epoch (UTC)."""

    nanos: int

    @staticmethod
    def checked(nanos: int) -> Timestamp:
        if not TIMESTAMP_MIN_S * NANOS <= nanos <= TIMESTAMP_MAX_S * NANOS + NANOS - 1:
            raise EvalError("range", "timestamp out of range")
        return Timestamp(nanos)


@dataclass(frozen=True, slots=True, order=True)
class Duration:
    """A signed span of time in nanoseconds."""

    nanos: int

    @staticmethod
    def checked(nanos: int) -> Duration:
        if not INT64_MIN <= nanos <= INT64_MAX:  # Go's time.Duration, as cel-go
            raise EvalError("range", "duration out of range")
        return Duration(nanos)


@dataclass(frozen=True, slots=True)
class TypeValue:
    """A CEL type as a value (`type(1)`, `int`)."""

    name: str

    def __str__(self) -> str:
        return self.name


TYPE_NAMES: Final = (
    "null_type",
    "bool",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "list",
    "map",
    "type",
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
)

_PYTHON_TYPES: Final[dict[str, type]] = {
    "null_type": type(None),
    "bool": bool,
    "int": int,
    "uint": UInt,
    "double": float,
    "string": str,
    "bytes": bytes,
    "list": list,
    "map": dict,
    "type": type,
    "google.protobuf.Timestamp": datetime.datetime,
    "google.protobuf.Duration": datetime.timedelta,
}
_TYPES_BY_CLASS: Final = {cls: TypeValue(name) for name, cls in _PYTHON_TYPES.items()}


# --- kinds ------------------------------------------------------------------------

_KIND_OF_CLASS: Final[dict[type, str]] = {
    type(None): "null",
    bool: "bool",
    int: "int",
    UInt: "uint",
    float: "double",
    str: "string",
    bytes: "bytes",
    list: "list",
    tuple: "list",
    Timestamp: "timestamp",
    Duration: "duration",
    TypeValue: "type",
}

# The type value of each kind, as `type()` returns it.
KIND_TYPES: Final = {
    "null": TypeValue("null_type"),
    "bool": TypeValue("bool"),
    "int": TypeValue("int"),
    "uint": TypeValue("uint"),
    "double": TypeValue("double"),
    "string": TypeValue("string"),
    "bytes": TypeValue("bytes"),
    "list": TypeValue("list"),
    "map": TypeValue("map"),
    "timestamp": TypeValue("google.protobuf.Timestamp"),
    "duration": TypeValue("google.protobuf.Duration"),
    "type": TypeValue("type"),
}


def kind(value: Any) -> str:
    """The CEL kind of an evaluator value (one of the keys of `KIND_TYPES`)."""
    found = _KIND_OF_CLASS.get(type(value))
    if found is not None:
        return found
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, list | tuple):  # subclasses: a namedtuple is a list
        return "list"
    raise AssertionError(f"not an evaluator value: {value!r}")  # from_python forbids it


def from_python(value: Any) -> Any:
    """A caller's Python value as an evaluator value, checked when it is read.
    Lists and Mappings stay as they are: their elements are read lazily."""
    cls = type(value)
    if cls in _KIND_OF_CLASS:
        if cls is int:
            if not INT64_MIN <= value <= INT64_MAX:
                raise EvalError("range", f"int {value} does not fit int64")
        elif cls is UInt and not 0 <= value <= UINT64_MAX:
            raise EvalError("range", f"uint {int(value)} does not fit uint64")
        elif cls is str and not value.isascii():
            _check_unicode(value)
        return value
    if isinstance(value, Mapping):
        return value
    if isinstance(value, UInt):
        return from_python(UInt(int(value)))
    if isinstance(value, int):
        return from_python(int(value))
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return from_python(str(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, list | tuple):
        return value
    if isinstance(value, datetime.datetime):
        return timestamp_from_datetime(value)
    if isinstance(value, datetime.timedelta):
        return Duration.checked(
            (value.days * 86400 + value.seconds) * NANOS + value.microseconds * 1000
        )
    if isinstance(value, type) and value in _TYPES_BY_CLASS:
        return _TYPES_BY_CLASS[value]
    raise EvalError("invalid_argument", f"a Python {cls.__name__} has no CEL type")


def _check_unicode(text: str) -> None:
    """CEL strings are Unicode text: a Python str with a lone surrogate is not."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise EvalError("invalid_argument", "a string with a lone surrogate") from None


def timestamp_from_datetime(value: datetime.datetime) -> Timestamp:
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    delta = value - datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    return Timestamp.checked(
        (delta.days * 86400 + delta.seconds) * NANOS + delta.microseconds * 1000
    )


_EPOCH: Final = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def to_python(value: Any, level: int = 0) -> Any:
    """An evaluator value as the plain Python value `Program.evaluate` returns
    (`level`: the lists and maps it sits in)."""
    value = from_python(value)
    k = kind(value)
    if k == "list":
        check_depth(level)
        return [to_python(v, level + 1) for v in value]
    if k == "map":
        check_depth(level)
        return {
            to_python(key, level + 1): to_python(item, level + 1) for key, item in map_items(value)
        }
    if k == "timestamp":
        return _EPOCH + datetime.timedelta(microseconds=value.nanos // 1000)
    if k == "duration":
        micros = abs(value.nanos) // 1000
        return datetime.timedelta(microseconds=micros if value.nanos >= 0 else -micros)
    if k == "type":
        return _PYTHON_TYPES[value.name]
    return value


# --- maps ---------------------------------------------------------------------------

KEY_KINDS: Final = frozenset({"bool", "int", "uint", "string"})


def _normal_key(key: Any) -> tuple[str, Any] | None:
    """The identity of a map key under CEL equality (int and uint keys of one
    value are the same key; an integral double finds them); None if no key
    of a map can equal `key`."""
    k = kind(key)
    if k == "bool":
        return ("b", key)
    if k in ("int", "uint"):
        return ("n", int(key))
    if k == "string":
        return ("s", key)
    if k == "double" and math.isfinite(key) and key == int(key):
        return ("n", int(key))
    return None


class CelMap(Mapping[Any, Any]):
    """A map built by CEL: keys compared with CEL equality, insertion order."""

    __slots__ = ("_entries",)

    def __init__(self, entries: dict[tuple[str, Any], tuple[Any, Any]]) -> None:
        self._entries = entries

    @staticmethod
    def build(pairs: list[tuple[Any, Any]]) -> CelMap:
        entries: dict[tuple[str, Any], tuple[Any, Any]] = {}
        for key, value in pairs:
            if kind(key) not in KEY_KINDS:
                raise EvalError("invalid_argument", f"unsupported map key type {type_name(key)}")
            normal = _normal_key(key)
            assert normal is not None
            if normal in entries:
                raise EvalError("invalid_argument", f"repeated map key {show(key)}")
            entries[normal] = (key, value)
        return CelMap(entries)

    def __getitem__(self, key: Any) -> Any:
        normal = _normal_key(key)
        if normal is None or normal not in self._entries:
            raise KeyError(key)
        return self._entries[normal][1]

    def __contains__(self, key: object) -> bool:
        normal = _normal_key(key)
        return normal is not None and normal in self._entries

    def __iter__(self) -> Iterator[Any]:
        return (key for key, _ in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"CelMap({dict(self._entries.values())!r})"


_MISSING: Final = object()


def map_lookup(mapping: Mapping[Any, Any], key: Any) -> Any:
    """`mapping[key]` under CEL key rules, or `_MISSING`. Only ``mapping[k]``
    is called on a caller's Mapping (docs/cel.md §5.2, §7)."""
    k = kind(key)
    if k == "double":
        if not (math.isfinite(key) and key == int(key)):
            return _MISSING
        key = int(key)
    elif k not in KEY_KINDS:
        return _MISSING
    try:
        return mapping[key]
    except KeyError:
        return _MISSING


def missing(value: Any) -> bool:
    return value is _MISSING


def map_items(mapping: Mapping[Any, Any]) -> Iterator[tuple[Any, Any]]:
    """The (key, value) pairs of a map, keys checked as CEL map keys."""
    for key in map_keys(mapping):
        yield key, from_python(mapping[key])


def map_keys(mapping: Mapping[Any, Any]) -> Iterator[Any]:
    for raw in mapping:
        key = from_python(raw)
        if kind(key) not in KEY_KINDS:
            raise EvalError("invalid_argument", f"unsupported map key type {type_name(key)}")
        yield key


def list_items(value: Any) -> Iterator[Any]:
    for item in value:
        yield from_python(item)


# --- equality and ordering -------------------------------------------------------------

_NUMERIC: Final = frozenset({"int", "uint", "double"})


def equals(a: Any, b: Any, level: int = 0) -> bool:
    """CEL `==`: numbers by value across kinds, lists and maps structurally,
    other kinds must match (an error only from reading an element, or
    `limit` past MAX_VALUE_DEPTH levels)."""
    ka, kb = kind(a), kind(b)
    if ka in _NUMERIC and kb in _NUMERIC:
        return numeric_compare(a, b) == 0
    if ka != kb:
        return False
    if ka == "list":
        check_depth(level)
        if len(a) != len(b):
            return False
        return all(
            equals(x, y, level + 1) for x, y in zip(list_items(a), list_items(b), strict=True)
        )
    if ka == "map":
        check_depth(level)
        if len(a) != len(b):
            return False
        for key, value in map_items(a):
            other = map_lookup(b, key)
            if missing(other) or not equals(value, from_python(other), level + 1):
                return False
        return True
    return bool(a == b)


def numeric_compare(a: Any, b: Any) -> int | None:
    """-1, 0 or 1 comparing two numbers as cel-go does; None if either is NaN.

    int and uint compare exactly; a double compares with an int/uint by
    converting the integer to the nearest double, unless the double lies
    outside the integer type's range (then it is simply smaller or larger)."""
    a_float, b_float = isinstance(a, float), isinstance(b, float)
    if a_float and b_float:
        if math.isnan(a) or math.isnan(b):
            return None
        return int(a > b) - int(a < b)
    if not a_float and not b_float:
        return int(a > b) - int(a < b)
    if a_float:
        result = _compare_integer_double(b, a)
        return None if result is None else -result
    return _compare_integer_double(a, b)


def _compare_integer_double(i: int, d: float) -> int | None:
    if math.isnan(d):
        return None
    low, high = (0.0, 2.0**64) if isinstance(i, UInt) else (-(2.0**63), 2.0**63)
    if d < low:
        return 1
    if d > high:
        return -1
    f = float(i)
    return (f > d) - (f < d)


_ORDERED: Final = frozenset({"string", "bytes", "bool", "timestamp", "duration"})


def compare(a: Any, b: Any) -> int:
    """CEL ordering: -1/0/1; `invalid_argument` when NaN is involved,
    `no_such_overload` for kinds that are not ordered together."""
    ka, kb = kind(a), kind(b)
    if ka in _NUMERIC and kb in _NUMERIC:
        result = numeric_compare(a, b)
        if result is None:
            raise EvalError("invalid_argument", "NaN values cannot be ordered")
        return result
    if ka == kb and ka in _ORDERED:
        return int(a > b) - int(a < b)
    raise EvalError("no_such_overload", f"no ordering between {ka} and {kb}")


# --- text ---------------------------------------------------------------------------------


def type_name(value: Any) -> str:
    return KIND_TYPES[kind(value)].name


def shortest_digits(x: float) -> tuple[str, int]:
    """The shortest round-trip decimal digits of a finite, non-zero |x| and
    its decimal exponent e (|x| = d.ddd x 10^e)."""
    mantissa, _, exponent = repr(abs(x)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    e = (int(exponent) if exponent else 0) + len(whole) - 1
    if whole == "0":  # 0.000123 -> digits '123', exponent from the leading zeros
        e = (int(exponent) if exponent else 0) - (len(fraction) - len(fraction.lstrip("0"))) - 1
    return digits.rstrip("0") or "0", e


def format_double_g(x: float) -> str:
    """Go's ``%g`` of a float64 (shortest digits): `string(double)`."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, x) < 0 else ""
    if x == 0:
        return sign + "0"
    digits, e = shortest_digits(x)
    if e < -4 or e >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if e < 0 else '+'}{abs(e):02d}"
    return sign + _plain(digits, e)


def format_double_f(x: float) -> str:
    """Go's ``strconv.FormatFloat(x, 'f', -1, 64)``: shortest digits, never an
    exponent (`format`'s ``%s``)."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    sign = "-" if math.copysign(1.0, x) < 0 else ""
    if x == 0:
        return sign + "0"
    digits, e = shortest_digits(x)
    return sign + _plain(digits, e)


def _plain(digits: str, e: int) -> str:
    if e < 0:
        return "0." + "0" * (-e - 1) + digits
    if len(digits) <= e + 1:
        return digits + "0" * (e + 1 - len(digits))
    return digits[: e + 1] + "." + digits[e + 1 :]


def format_timestamp(ts: Timestamp) -> str:
    seconds, nanos = divmod(ts.nanos, NANOS)
    moment = _EPOCH + datetime.timedelta(seconds=seconds)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if len(text) < 19:  # strftime may drop leading zeros of small years
        text = f"{moment.year:04d}" + text[text.index("-") :]
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    return text + "Z"


def format_duration(d: Duration) -> str:
    sign = "-" if d.nanos < 0 else ""
    seconds, nanos = divmod(abs(d.nanos), NANOS)
    fraction = "." + f"{nanos:09d}".rstrip("0") if nanos else ""
    return f"{sign}{seconds}{fraction}s"


def to_string(value: Any) -> str:
    """CEL `string(x)` for the kinds it accepts."""
    k = kind(value)
    if k == "string":
        return str(value)
    if k == "bool":
        return "true" if value else "false"
    if k in ("int", "uint"):
        return str(int(value))
    if k == "double":
        return format_double_g(value)
    if k == "bytes":
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise EvalError("conversion", "bytes are not valid UTF-8") from None
    if k == "timestamp":
        return format_timestamp(value)
    if k == "duration":
        return format_duration(value)
    if k == "type":
        return str(value.name)
    raise EvalError("no_such_overload", f"no string() of {type_name(value)}")


def show(value: Any, level: int = 0) -> str:
    """`format`'s ``%s`` rendering (cel-go formatting v2). The text of a
    list or map is `limit` once it grows past MAX_SIZE code points, or when
    it nests past MAX_VALUE_DEPTH levels."""
    k = kind(value)
    if k == "double":
        return format_double_f(value)
    if k == "bytes":
        return bytes(value).decode("utf-8", errors="replace")
    if k == "null":
        return "null"
    if k == "list":
        check_depth(level)
        size = 2  # "[" + items joined by ", " + "]", counted as it grows
        parts = []
        for i, item in enumerate(list_items(value)):
            part = show(item, level + 1)
            size += len(part) + (2 if i else 0)
            check_length(size)
            parts.append(part)
        return "[" + ", ".join(parts) + "]"
    if k == "map":
        check_depth(level)
        size = 2  # "{" + "k: v" entries joined by ", " + "}"
        entries = []
        for i, (key, item) in enumerate(map_items(value)):
            entry = (show(key, level + 1), show(item, level + 1))
            size += len(entry[0]) + 2 + len(entry[1]) + (2 if i else 0)
            check_length(size)
            entries.append(entry)
        entries.sort(key=_first)
        return "{" + ", ".join(f"{key}: {item}" for key, item in entries) + "}"
    return to_string(value)


def _first(entry: tuple[str, str]) -> str:
    return entry[0]


_Sized = TypeVar("_Sized", bound=Sized)


def check_size(value: _Sized) -> _Sized:
    """`limit` when a built string, bytes or list is longer than MAX_SIZE."""
    check_length(len(value))
    return value


def check_length(length: int) -> None:
    """`limit` when a result would be longer than MAX_SIZE: called before
    building it where its length can be known (or as it grows)."""
    if length > MAX_SIZE:
        raise EvalError("limit", f"result longer than {MAX_SIZE}")


def check_depth(level: int) -> None:
    """`limit` for a list or map `level` levels down a walked value."""
    if level >= MAX_VALUE_DEPTH:
        raise EvalError("limit", f"value nested deeper than {MAX_VALUE_DEPTH} levels")
