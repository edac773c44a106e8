"""The CEL standard functions: arithmetic operators, `size`, string tests,
`matches`, conversions, timestamps and durations (docs/cel.md §5, §11.1).

Operators are functions named as cel-go names them (``_+_``, ``-_``)."""

from __future__ import annotations

import functools
import math
import re
from typing import Any, Final

import re2

from edgeward.expr import lib_time
from edgeward.expr.celtypes import DYN, Type, list_of
from edgeward.expr.errors import EvalError
from edgeward.expr.functions import Overload, overload
from edgeward.expr.values import (
    INT64_MAX,
    INT64_MIN,
    KIND_TYPES,
    NANOS,
    UINT64_MAX,
    Duration,
    Timestamp,
    UInt,
    check_size,
    kind,
    to_string,
)

# --- arithmetic ---------------------------------------------------------------------


def checked_int(value: int) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise EvalError("overflow", "int overflow")
    return value


def checked_uint(value: int) -> UInt:
    if not 0 <= value <= UINT64_MAX:
        raise EvalError("overflow", "uint overflow")
    return UInt(value)


def _int_div(a: int, b: int) -> int:
    if b == 0:
        raise EvalError("division_by_zero", "division by zero")
    quotient = abs(a) // abs(b)
    return quotient if (a < 0) == (b < 0) else -quotient


def _int_mod(a: int, b: int) -> int:
    if b == 0:
        raise EvalError("modulus_by_zero", "modulus by zero")
    remainder = abs(a) % abs(b)
    return -remainder if a < 0 else remainder


def _double_div(a: float, b: float) -> float:
    if b == 0.0:
        if a == 0.0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _int_div_checked(a: int, b: int) -> int:
    return checked_int(_int_div(a, b))


def _int_mod_checked(a: int, b: int) -> int:
    if a == INT64_MIN and b == -1:
        raise EvalError("overflow", "int overflow")
    return _int_mod(a, b)


def _list_result(args: tuple[Type, ...]) -> Type:
    return args[0] if args[0] == args[1] else list_of(DYN)


def _concat_list(a: Any, b: Any) -> list[Any]:
    return check_size([*a, *b])


ARITHMETIC: Final = [
    overload("_+_", ("int", "int"), "int", lambda a, b: checked_int(a + b)),
    overload("_+_", ("uint", "uint"), "uint", lambda a, b: checked_uint(a + b)),
    overload("_+_", ("double", "double"), "double", lambda a, b: a + b),
    overload("_+_", ("string", "string"), "string", lambda a, b: check_size(a + b)),
    overload("_+_", ("bytes", "bytes"), "bytes", lambda a, b: check_size(a + b)),
    overload("_+_", ("list", "list"), _list_result, _concat_list),
    overload(
        "_+_",
        ("timestamp", "duration"),
        "timestamp",
        lambda a, b: Timestamp.checked(a.nanos + b.nanos),
    ),
    overload(
        "_+_",
        ("duration", "timestamp"),
        "timestamp",
        lambda a, b: Timestamp.checked(a.nanos + b.nanos),
    ),
    overload(
        "_+_",
        ("duration", "duration"),
        "duration",
        lambda a, b: Duration.checked(a.nanos + b.nanos),
    ),
    overload("_-_", ("int", "int"), "int", lambda a, b: checked_int(a - b)),
    overload("_-_", ("uint", "uint"), "uint", lambda a, b: checked_uint(a - b)),
    overload("_-_", ("double", "double"), "double", lambda a, b: a - b),
    overload(
        "_-_",
        ("timestamp", "timestamp"),
        "duration",
        lambda a, b: Duration.checked(a.nanos - b.nanos),
    ),
    overload(
        "_-_",
        ("timestamp", "duration"),
        "timestamp",
        lambda a, b: Timestamp.checked(a.nanos - b.nanos),
    ),
    overload(
        "_-_",
        ("duration", "duration"),
        "duration",
        lambda a, b: Duration.checked(a.nanos - b.nanos),
    ),
    overload("_*_", ("int", "int"), "int", lambda a, b: checked_int(a * b)),
    overload("_*_", ("uint", "uint"), "uint", lambda a, b: checked_uint(a * b)),
    overload("_*_", ("double", "double"), "double", lambda a, b: a * b),
    overload("_/_", ("int", "int"), "int", _int_div_checked),
    overload("_/_", ("uint", "uint"), "uint", lambda a, b: UInt(_int_div(a, b))),
    overload("_/_", ("double", "double"), "double", _double_div),
    overload("_%_", ("int", "int"), "int", _int_mod_checked),
    overload("_%_", ("uint", "uint"), "uint", lambda a, b: UInt(_int_mod(a, b))),
    overload("-_", "int", "int", lambda a: checked_int(-a)),
    overload("-_", "double", "double", lambda a: -a),
]

# --- size and strings --------------------------------------------------------------------

_SIZED: Final = ("string", "bytes", "list", "map")

SIZE: Final = [
    *(overload("size", kind_, "int", len) for kind_ in _SIZED),
    *(overload("size", kind_, "int", len, receiver=True) for kind_ in _SIZED),
]


@functools.lru_cache(maxsize=256)
def compile_regex(pattern: str) -> Any:
    """A compiled RE2 pattern; `regex` error if it is not valid RE2."""
    options = re2.Options()
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        raise EvalError("regex", f"invalid regular expression {pattern!r}: {exc}") from None


def matches(text: str, pattern: str) -> bool:
    return compile_regex(pattern).search(text) is not None


def _check_regex(_text: Any, pattern: Any) -> None:
    if isinstance(pattern, str):
        compile_regex(pattern)


STRINGS: Final = [
    overload("contains", ("string", "string"), "bool", lambda s, t: t in s, receiver=True),
    overload("startsWith", ("string", "string"), "bool", str.startswith, receiver=True),
    overload("endsWith", ("string", "string"), "bool", str.endswith, receiver=True),
    overload(
        "matches",
        ("string", "string"),
        "bool",
        matches,
        receiver=True,
        check_constants=_check_regex,
    ),
    overload("matches", ("string", "string"), "bool", matches, check_constants=_check_regex),
]

# --- conversions ---------------------------------------------------------------------------

_INT_TEXT: Final = re.compile(r"[+-]?[0-9]+", re.ASCII)
_UINT_TEXT: Final = re.compile(r"[0-9]+", re.ASCII)
_DOUBLE_TEXT: Final = re.compile(
    r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)",
    re.ASCII | re.IGNORECASE,
)


def _int_from_double(x: float) -> int:
    if not (math.isfinite(x) and -(2.0**63) < x < 2.0**63):
        raise EvalError("range", f"double {x} out of int range")
    return int(x)


def _uint_from_double(x: float) -> UInt:
    if not (math.isfinite(x) and 0 <= x < 2.0**64):
        raise EvalError("range", f"double {x} out of uint range")
    return UInt(int(x))


def _int_from_string(text: str) -> int:
    if not _INT_TEXT.fullmatch(text):
        raise EvalError("conversion", f"cannot convert {text!r} to int")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise EvalError("range", f"{text!r} out of int range")
    return value


def _uint_from_string(text: str) -> UInt:
    if not _UINT_TEXT.fullmatch(text):
        raise EvalError("conversion", f"cannot convert {text!r} to uint")
    value = int(text)
    if value > UINT64_MAX:
        raise EvalError("range", f"{text!r} out of uint range")
    return UInt(value)


def _double_from_string(text: str) -> float:
    if not _DOUBLE_TEXT.fullmatch(text):
        raise EvalError("conversion", f"cannot convert {text!r} to double")
    value = float(text)
    if math.isinf(value) and "inf" not in text.lower():
        raise EvalError("conversion", f"{text!r} out of double range")
    return value


def _int_to_uint(value: int) -> UInt:
    if value < 0:
        raise EvalError("range", f"{value} out of uint range")
    return UInt(value)


def _uint_to_int(value: UInt) -> int:
    if value > INT64_MAX:
        raise EvalError("range", f"{int(value)} out of int range")
    return int(value)


_BOOL_TEXT: Final = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}


def _bool_from_string(text: str) -> bool:
    if text not in _BOOL_TEXT:
        raise EvalError("conversion", f"cannot convert {text!r} to bool")
    return _BOOL_TEXT[text]


def _identity(value: Any) -> Any:
    return value


def _check_timestamp_text(text: Any) -> None:
    if isinstance(text, str):
        lib_time.parse_timestamp(text)


def _check_duration_text(text: Any) -> None:
    if isinstance(text, str):
        lib_time.parse_duration(text)


CONVERSIONS: Final = [
    overload("int", "int", "int", _identity),
    overload("int", "uint", "int", _uint_to_int),
    overload("int", "double", "int", _int_from_double),
    overload("int", "string", "int", _int_from_string),
    overload("int", "timestamp", "int", lambda ts: ts.nanos // NANOS),
    overload("uint", "uint", "uint", _identity),
    overload("uint", "int", "uint", _int_to_uint),
    overload("uint", "double", "uint", _uint_from_double),
    overload("uint", "string", "uint", _uint_from_string),
    overload("double", "double", "double", _identity),
    overload("double", "int", "double", float),
    overload("double", "uint", "double", float),
    overload("double", "string", "double", _double_from_string),
    *(
        overload("string", kind_, "string", to_string)
        for kind_ in (
            "string",
            "bool",
            "int",
            "uint",
            "double",
            "bytes",
            "timestamp",
            "duration",
            "type",
        )
    ),
    overload("bytes", "bytes", "bytes", _identity),
    overload("bytes", "string", "bytes", lambda s: s.encode("utf-8")),
    overload("bool", "bool", "bool", _identity),
    overload("bool", "string", "bool", _bool_from_string),
    overload("dyn", "A", "dyn", _identity),
    overload("type", "A", "type", lambda v: KIND_TYPES[kind(v)]),
    overload("timestamp", "timestamp", "timestamp", _identity),
    overload(
        "timestamp",
        "string",
        "timestamp",
        lib_time.parse_timestamp,
        check_constants=_check_timestamp_text,
    ),
    overload("timestamp", "int", "timestamp", lib_time.timestamp_from_seconds),
    overload("duration", "duration", "duration", _identity),
    overload(
        "duration",
        "string",
        "duration",
        lib_time.parse_duration,
        check_constants=_check_duration_text,
    ),
]

# --- timestamp and duration getters -----------------------------------------------------


def _check_zone(_ts: Any, zone: Any) -> None:
    if isinstance(zone, str):
        lib_time.check_timezone(zone)


def _timestamp_getter(field: str) -> list[Overload]:
    return [
        overload(
            field,
            "timestamp",
            "int",
            lambda ts: lib_time.timestamp_field(ts, field),
            receiver=True,
        ),
        overload(
            field,
            ("timestamp", "string"),
            "int",
            lambda ts, zone: lib_time.timestamp_field(ts, field, zone),
            receiver=True,
            check_constants=_check_zone,
        ),
    ]


def _duration_getter(field: str) -> Overload:
    return overload(
        field, "duration", "int", lambda d: lib_time.duration_field(d, field), receiver=True
    )


TIME: Final = [
    *(o for field in lib_time.TIMESTAMP_GETTERS for o in _timestamp_getter(field)),
    *(_duration_getter(field) for field in lib_time.DURATION_GETTERS),
]

OVERLOADS: Final = [*ARITHMETIC, *SIZE, *STRINGS, *CONVERSIONS, *TIME]
