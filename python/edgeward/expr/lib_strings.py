"""cel-go's strings extension, as the conformance files pin it (docs/cel.md
§11.2). Indices and lengths are in code points."""

from __future__ import annotations

import math
from typing import Any, Final

from edgeward.expr.errors import EvalError
from edgeward.expr.functions import overload
from edgeward.expr.values import (
    check_length,
    format_double_f,
    kind,
    list_items,
    show,
    type_name,
)

# Unicode White_Space, as Go's strings.TrimSpace sees it.
WHITESPACE: Final = (
    "\t\n\v\f\r \u0085\u00a0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


def _index_error(index: int) -> EvalError:
    return EvalError("invalid_argument", f"index out of range: {index}")


def char_at(s: str, i: int) -> str:
    if not 0 <= i <= len(s):
        raise _index_error(i)
    return s[i : i + 1]


def index_of(s: str, sub: str, offset: int = 0) -> int:
    if not 0 <= offset <= len(s):
        raise _index_error(offset)
    return s.find(sub, offset)


def last_index_of(s: str, sub: str, offset: int | None = None) -> int:
    if offset is None:
        return s.rfind(sub)
    if not 0 <= offset <= len(s):
        raise _index_error(offset)
    # The match may start at `offset` at the latest.
    return s.rfind(sub, 0, offset + len(sub))


def _ascii_case(s: str, upper: bool) -> str:
    table = _UPPER if upper else _LOWER
    return s.translate(table)


_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_UPPER: Final = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def replace(s: str, old: str, new: str, n: int = -1) -> str:
    """Go's strings.Replace: n < 0 replaces all; an empty `old` matches at the
    start and after every code point. The result's length is checked before
    it is built (n short matches replaced by a long `new` multiply)."""
    count = len(s) + 1 if old == "" else s.count(old)
    if n >= 0:
        count = min(count, n)
    check_length(len(s) + count * (len(new) - len(old)))
    if count == 0 or (old == "" and new == ""):
        return s
    if old == "":
        points = list(s)
        limit = len(points) + 1 if n < 0 else min(n, len(points) + 1)
        out = []
        for i in range(len(points) + 1):
            if i < limit:
                out.append(new)
            if i < len(points):
                out.append(points[i])
        return "".join(out)
    return s.replace(old, new, n if n >= 0 else -1)


def split(s: str, sep: str, n: int = -1) -> list[str]:
    """Go's strings.SplitN."""
    if n == 0:
        return []
    if sep == "":
        points = list(s)
        if n > 0 and len(points) > n:
            return [*points[: n - 1], "".join(points[n - 1 :])]
        return points
    return s.split(sep, n - 1 if n > 0 else -1)


def substring(s: str, start: int, end: int | None = None) -> str:
    if end is None:
        end = len(s)
    elif start > end:
        raise EvalError("invalid_argument", f"invalid substring range. start: {start}, end: {end}")
    if not 0 <= start <= len(s):
        raise _index_error(start)
    if not 0 <= end <= len(s):
        raise _index_error(end)
    return s[start:end]


def join(items: Any, sep: str = "") -> str:
    parts = []
    for item in list_items(items):
        if kind(item) != "string":
            raise EvalError("no_such_overload", f"join: element is a {type_name(item)}")
        parts.append(item)
    # Checked before joining: a list may hold one long string many times.
    check_length(sum(map(len, parts)) + len(sep) * max(len(parts) - 1, 0))
    return sep.join(parts)


_QUOTE_ESCAPES: Final = str.maketrans(
    {
        "\a": "\\a",
        "\b": "\\b",
        "\f": "\\f",
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
        "\v": "\\v",
        "\\": "\\\\",
        '"': '\\"',
    }
)


def quote(s: str) -> str:
    return '"' + s.translate(_QUOTE_ESCAPES) + '"'


# --- format -------------------------------------------------------------------------

MAX_PRECISION: Final = 100


def _format_error(message: str) -> EvalError:
    return EvalError("invalid_argument", message)


def _special_double(x: float) -> str | None:
    if math.isnan(x):
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "Infinity" if x > 0 else "-Infinity"
    return None


def _clause(verb: str, precision: int, arg: Any) -> str:
    k = kind(arg)
    if verb == "s":
        try:
            return show(arg)
        except EvalError as exc:
            if exc.kind == "limit":
                raise
            raise _format_error(f"error during formatting: {exc.message}") from None
    if verb == "d":
        if k in ("int", "uint"):
            return str(int(arg))
        if k == "double":
            return format_double_f(arg)
        raise _format_error(f"decimal clause can only be used on integers, was given {k}")
    if verb in ("f", "e"):
        if k in ("int", "uint", "double"):
            x = float(arg)
            special = _special_double(x)
            if special is not None:
                return special
            return f"{x:.{precision}{verb}}"
        name = "fixed-point" if verb == "f" else "scientific"
        raise _format_error(f"{name} clause can only be used on doubles, was given {k}")
    if verb == "b":
        if k == "bool":
            return "1" if arg else "0"
        if k in ("int", "uint"):
            return format(int(arg), "b")
        raise _format_error(f"only integers and bools can be formatted as binary, was given {k}")
    if verb in ("x", "X"):
        if k in ("int", "uint"):
            text = format(int(arg), "x")
        elif k == "string":
            text = arg.encode("utf-8").hex()
        elif k == "bytes":
            text = bytes(arg).hex()
        else:
            raise _format_error(
                f"only integers, byte buffers, and strings can be formatted as hex, was given {k}"
            )
        return text.upper() if verb == "X" else text
    if verb == "o":
        if k in ("int", "uint"):
            return format(int(arg), "o")
        raise _format_error(f"octal clause can only be used on integers, was given {k}")
    raise _format_error(
        f'could not parse formatting clause: unrecognized formatting clause "{verb}"'
    )


def format_string(template: str, args: Any) -> str:
    """cel-go's `string.format(list)` (formatting v2). The length of the
    result is checked after each clause, before the next one is built."""
    values = list(list_items(args))
    out: list[str] = []
    size = 0  # code points in `out`
    i = 0
    arg_index = 0
    n = len(template)
    while i < n:
        ch = template[i]
        if ch != "%":
            out.append(ch)
            size += 1
            i += 1
            continue
        if i + 1 < n and template[i + 1] == "%":
            out.append("%")
            size += 1
            i += 2
            continue
        if arg_index >= len(values):
            raise _format_error(f"index {arg_index} out of range")
        i += 1
        precision = 6
        if i < n and template[i] == ".":
            start = i + 1
            i = start
            while i < n and template[i].isascii() and template[i].isdigit():
                i += 1
            if i >= n:
                raise _format_error("could not find end of precision specifier")
            if i == start:
                raise _format_error("missing precision")
            precision = int(template[start:i])
            if precision > MAX_PRECISION:
                raise _format_error(f"precision {precision} exceeds {MAX_PRECISION}")
        if i >= n:
            raise _format_error("unexpected end of string")
        text = _clause(template[i], precision, values[arg_index])
        size += len(text)
        check_length(size)
        out.append(text)
        arg_index += 1
        i += 1
    check_length(size)
    return "".join(out)


OVERLOADS: Final = [
    overload("charAt", ("string", "int"), "string", char_at, receiver=True),
    overload("indexOf", ("string", "string"), "int", index_of, receiver=True),
    overload("indexOf", ("string", "string", "int"), "int", index_of, receiver=True),
    overload("lastIndexOf", ("string", "string"), "int", last_index_of, receiver=True),
    overload("lastIndexOf", ("string", "string", "int"), "int", last_index_of, receiver=True),
    overload("lowerAscii", "string", "string", lambda s: _ascii_case(s, False), receiver=True),
    overload("upperAscii", "string", "string", lambda s: _ascii_case(s, True), receiver=True),
    overload("lower", "string", "string", str.lower, receiver=True),
    overload("upper", "string", "string", str.upper, receiver=True),
    overload("replace", ("string", "string", "string"), "string", replace, receiver=True),
    overload("replace", ("string", "string", "string", "int"), "string", replace, receiver=True),
    overload("split", ("string", "string"), "list(string)", split, receiver=True),
    overload("split", ("string", "string", "int"), "list(string)", split, receiver=True),
    overload("substring", ("string", "int"), "string", substring, receiver=True),
    overload("substring", ("string", "int", "int"), "string", substring, receiver=True),
    overload("trim", "string", "string", lambda s: s.strip(WHITESPACE), receiver=True),
    overload("reverse", "string", "string", lambda s: s[::-1], receiver=True),
    overload("join", "list(string)", "string", join, receiver=True),
    overload("join", ("list(string)", "string"), "string", join, receiver=True),
    overload("strings.quote", "string", "string", quote),
    overload("format", ("string", "list"), "string", format_string, receiver=True),
]
