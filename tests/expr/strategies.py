"""Hypothesis strategies for CEL: typed expressions over a fixed set of
declared variables, activations for them, ill-typed mutations and hostile
sources. Shared by the agreement tests of both twins (reuse them from Rust
bindings tests too: nothing here depends on the implementation).

`expressions(t)` draws CEL source text whose static type is `t` (one of
`TYPES`) when `chaos` is 0; with `chaos` > 0, each sub-expression is, with
probability 1/chaos, of a random other type (the result may be ill-typed).
"""

from __future__ import annotations

import datetime
import math
import string
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from edgeward.expr import UInt

# The declared variables the generated expressions use (Env(variables=...)).
SCHEMA: dict[str, Any] = {
    "i": "int",
    "j": "int",
    "u": "uint",
    "d": "double",
    "s": "string",
    "t": "string",
    "b": "bytes",
    "f": "bool",
    "li": "list(int)",
    "ls": "list(string)",
    "ms": "map(string, int)",
    "x": "dyn",
    "y": "dyn",
    "ts": "timestamp",
    "du": "duration",
    "req": {
        "url": {"": "string", "path": "string", "query": "string"},
        "headers": "map(string, list(string))",
        "method": "string",
    },
}

TYPES = (
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "list(int)",
    "list(string)",
    "map(string, int)",
    "dyn",
    "timestamp",
    "duration",
)

_VARIABLES: dict[str, list[str]] = {}
for _name, _type in SCHEMA.items():
    if isinstance(_type, str):
        _VARIABLES.setdefault(_type, []).append(_name)
_VARIABLES["string"] += ["req.url", "req.url.path", "req.method"]
_VARIABLES["map(string, list(string))"] = ["req.headers"]

# --- literals ----------------------------------------------------------------------------

INT64 = st.one_of(
    st.sampled_from([0, 1, -1, 2, 7, 100, 2**31, 2**63 - 1, -(2**63), 2**62]),
    st.integers(-(2**63), 2**63 - 1),
)
UINT64 = st.one_of(st.sampled_from([0, 1, 2, 10, 2**63, 2**64 - 1]), st.integers(0, 2**64 - 1))
DOUBLES = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.5, 0.5, 1e300, -1e-300, 2.0**63, 2.0**64, 1e6, 1e21]),
    st.floats(allow_nan=True, allow_infinity=True),
)
TEXT = st.one_of(
    st.sampled_from(["", "a", "abc", "Hello World", "a,b,c", "%s", "/api/v1", "é", "10.0.0.1"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8),
)
BYTES = st.binary(max_size=8)
PATTERNS = st.sampled_from(["a", "^a.*c$", "[0-9]+", "\\d", "(x|y)", "", ".", "\\w+@\\w+", "("])
ZONES = st.sampled_from(
    ["UTC", "America/New_York", "Asia/Kathmandu", "+05:30", "-02:00", "Nowhere"]
)
CIDRS = st.sampled_from(["10.0.0.0/8", "192.168.1.0/24", "::/0", "2001:db8::/32", "0.0.0.0/0"])
IPS = st.sampled_from(["10.1.2.3", "192.168.1.7", "8.8.8.8", "2001:db8::1", "::ffff:10.0.0.1", "x"])
DURATIONS = st.sampled_from(["0", "1s", "1.5h", "-3m", "1h2m3.5s", "100ms", "2562047h", "1x"])
# URL-ish text for parseUrl / isURL: Go's url_test.go shapes and their edges.
URL_PARTS = st.tuples(
    st.sampled_from(["", "http:", "HTTPS:", "mailto:", "x+y.z:", "1a:", ":", "cache_object:"]),
    st.sampled_from(["", "//", "///", "/"]),
    st.sampled_from(["", "user@", "u:p@", "j@ne:pw@", "a%20b@", "bad user@", "%zz@", "é@"]),
    st.sampled_from(
        ["", "host", "example.com:80", "[fe80::1]", "[fe80::1%25en0]:8", "[::1]a", "%41", "h%C3%A9",
         "x:y:z", "a b", "ünï"]
    ),
    st.sampled_from(["", "/", "/a/b", "/file%20one%26two", "/a%2fb", "/[x]", "/%ff", "/%zz",
                     "/é", "a:b/c", "/ sp", "*"]),
    st.sampled_from(["", "?", "?q=1&r", "?a?b", "?q=go+language"]),
    st.sampled_from(["", "#", "#frag", "#a%20b", "#x%zz", "#!()*", "#é"]),
).map("".join)  # fmt: skip
URLS = st.one_of(URL_PARTS, TEXT)
SECRETS: dict[str, dict[str, str]] = {"v": {"k": "s3cr3t", "": "empty-name"}, "w": {"k": "other"}}
SECRET_NAMES = st.sampled_from(["'v'", "'w'", "'k'", "''", "'x'"])

TIMESTAMPS = st.sampled_from(
    [
        "2009-02-13T23:31:30Z",
        "1970-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999999Z",
        "2024-02-29T12:00:00.5+02:00",
        "2024-13-01T00:00:00Z",
    ]
)


def cel_string(text: str) -> str:
    """A CEL string literal for `text`."""
    out = []
    for ch in text:
        if ch in "\\\"'":
            out.append("\\" + ch)
        elif ch.isprintable() and ch not in "\r\n":
            out.append(ch)
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def cel_bytes(data: bytes) -> str:
    return 'b"' + "".join(f"\\x{byte:02x}" for byte in data) + '"'


def cel_double(x: float) -> str:
    if math.isnan(x):
        return "(0.0/0.0)"
    if x in (float("inf"), float("-inf")):
        return "(1.0/0.0)" if x > 0 else "(-1.0/0.0)"
    text = repr(x)
    return f"({text})" if text.startswith("-") else text


def literals(t: str) -> st.SearchStrategy[str]:
    if t == "int":
        return INT64.map(lambda n: f"({n})" if n < 0 else str(n))
    if t == "uint":
        return UINT64.map(lambda n: f"{n}u")
    if t == "double":
        return DOUBLES.map(cel_double)
    if t == "string":
        return TEXT.map(cel_string)
    if t == "bytes":
        return BYTES.map(cel_bytes)
    if t == "bool":
        return st.sampled_from(["true", "false"])
    if t == "timestamp":
        return TIMESTAMPS.map(lambda v: f"timestamp({cel_string(v)})")
    if t == "duration":
        return DURATIONS.map(lambda v: f"duration({cel_string(v)})")
    if t == "dyn":
        return st.sampled_from(["null", "1", "2u", "2.5", "'x'", "[1, 'a']", "{'k': 1}"]).map(
            lambda v: f"dyn({v})"
        )
    if t == "list(int)":
        return st.lists(INT64.map(str), max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]")
    if t == "list(string)":
        return st.lists(TEXT.map(cel_string), max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]")
    if t == "map(string, int)":
        return st.dictionaries(TEXT, INT64, max_size=3).map(
            lambda m: "{" + ", ".join(f"{cel_string(k)}: {v}" for k, v in m.items()) + "}"
        )
    raise ValueError(t)


# --- expressions ----------------------------------------------------------------------------

Scope = tuple[tuple[str, str], ...]  # comprehension variables in scope: (name, type)
Production = Callable[[Callable[[str], str]], str]

_ANY_KEY = "@any"  # draw a sub-expression of a random type


def _same_type_pair(e: Callable[[str], str], op: str) -> str:
    t = e("@type")
    return f"({e(t)} {op} {e(t)})"


def _ordered_pair(e: Callable[[str], str]) -> str:
    t = e("@ordered")
    op = e("@relop")
    return f"({e(t)} {op} {e(t)})"


def _field(e: Callable[[str], str]) -> str:
    return e("@field")


def _pattern(e: Callable[[str], str]) -> str:
    return e("@pattern")


def _zone(e: Callable[[str], str]) -> str:
    return e("@zone")


def _ip(e: Callable[[str], str]) -> str:
    return e("@ip")


def _cidr(e: Callable[[str], str]) -> str:
    return e("@cidr")


def _url(e: Callable[[str], str]) -> str:
    return e("@url")


def _body(e: Callable[[str], str], var: str, var_type: str, t: str) -> str:
    return e(f"@scope:{var}:{var_type}:{t}")


# Productions per result type. `e(t)` draws a sub-expression of type t.
_PRODUCTIONS: dict[str, list[Production]] = {
    "int": [
        lambda e: f"({e('int')} + {e('int')})",
        lambda e: f"({e('int')} - {e('int')})",
        lambda e: f"({e('int')} * {e('int')})",
        lambda e: f"({e('int')} / {e('int')})",
        lambda e: f"({e('int')} % {e('int')})",
        lambda e: f"-{e('int')}",
        lambda e: f"size({e('string')})",
        lambda e: f"{e('list(int)')}.size()",
        lambda e: f"int({e('double')})",
        lambda e: f"int({e('uint')})",
        lambda e: f"int({e('string')})",
        lambda e: f"int({e('timestamp')})",
        lambda e: f"{e('list(int)')}[{e('int')}]",
        lambda e: f"{e('map(string, int)')}[{e('string')}]",
        lambda e: f"({e('bool')} ? {e('int')} : {e('int')})",
        lambda e: f"{e('string')}.indexOf({e('string')})",
        lambda e: f"{e('string')}.lastIndexOf({e('string')}, {e('int')})",
        lambda e: f"size({e('list(string)')}.sortBy(w, {_body(e, 'w', 'string', 'string')}))",
        lambda e: f"{e('timestamp')}.getHours()",
        lambda e: f"{e('timestamp')}.getDayOfYear({_zone(e)})",
        lambda e: f"{e('duration')}.getMinutes()",
        lambda e: f"{e('map(string, int)')}.{_field(e)}",
    ],
    "uint": [
        lambda e: f"({e('uint')} + {e('uint')})",
        lambda e: f"({e('uint')} - {e('uint')})",
        lambda e: f"({e('uint')} * {e('uint')})",
        lambda e: f"({e('uint')} / {e('uint')})",
        lambda e: f"({e('uint')} % {e('uint')})",
        lambda e: f"uint({e('int')})",
        lambda e: f"uint({e('double')})",
        lambda e: f"uint({e('string')})",
    ],
    "double": [
        lambda e: f"({e('double')} + {e('double')})",
        lambda e: f"({e('double')} - {e('double')})",
        lambda e: f"({e('double')} * {e('double')})",
        lambda e: f"({e('double')} / {e('double')})",
        lambda e: f"-{e('double')}",
        lambda e: f"double({e('int')})",
        lambda e: f"double({e('uint')})",
        lambda e: f"double({e('string')})",
    ],
    "string": [
        lambda e: f"({e('string')} + {e('string')})",
        lambda e: f"string({e('int')})",
        lambda e: f"string({e('uint')})",
        lambda e: f"string({e('double')})",
        lambda e: f"string({e('bytes')})",
        lambda e: f"string({e('bool')})",
        lambda e: f"string({e('timestamp')})",
        lambda e: f"string({e('duration')})",
        lambda e: f"{e('string')}.substring({e('int')})",
        lambda e: f"{e('string')}.substring({e('int')}, {e('int')})",
        lambda e: f"{e('string')}.charAt({e('int')})",
        lambda e: f"{e('string')}.lowerAscii()",
        lambda e: f"{e('string')}.upperAscii()",
        lambda e: f"{e('string')}.replace({e('string')}, {e('string')})",
        lambda e: f"{e('string')}.replace({e('string')}, {e('string')}, {e('int')})",
        lambda e: f"{e('string')}.trim()",
        lambda e: f"{e('string')}.reverse()",
        lambda e: f"{e('list(string)')}.join({e('string')})",
        lambda e: f"{e('string')}.format([{e('dyn')}, {e('int')}])",
        lambda e: (
            f"'%s|%d|%.2f|%x|%b'.format([{e('dyn')}, {e('int')}, {e('double')}, "
            f"{e('bytes')}, {e('bool')}])"
        ),
        lambda e: f"strings.quote({e('string')})",
        lambda e: f"base64.encode({e('bytes')})",
        lambda e: f"url.escape({e('string')})",
        lambda e: f"url.unescape({e('string')})",
        lambda e: f"json.encode({e('dyn')})",
        lambda e: f"hash.sha256({e('string')})",
        lambda e: f"hash.crc32({e('string')}, 'base64')",
        lambda e: f"basic_auth.encode({e('string')}, {e('string')})",
        lambda e: f"hash.xxhash64({e('string')})",
        lambda e: f"{e('string')}.xxhash64({e('@hashformat')})",
        lambda e: f"{e('string')}.encodeBase64()",
        lambda e: f"{e('bytes')}.encodeBase64()",
        lambda e: f"{e('string')}.decodeBase64()",
        lambda e: f"url.parse({_url(e)}).{e('@urlfield')}",
        lambda e: f"{_url(e)}.parseUrl().user.{e('@userfield')}",
        lambda e: f"b64.encode({e('bytes')})",
        lambda e: f"utility.url_escape({e('string')})",
        lambda e: f"utility.string_encode_base64({e('string')})",
        lambda e: f"security.secret({e('@secret')}, {e('@secret')})",
        lambda e: f"secrets.get({e('string')}, {e('@secret')})",
        lambda e: "http.path()",
        lambda e: f"({e('bool')} ? {e('string')} : {e('string')})",
        lambda e: f"{e('list(string)')}[{e('int')}]",
        lambda e: "req.url",
    ],
    "bytes": [
        lambda e: f"({e('bytes')} + {e('bytes')})",
        lambda e: f"bytes({e('string')})",
        lambda e: f"base64.decode({e('string')})",
    ],
    "bool": [
        lambda e: _same_type_pair(e, "=="),
        lambda e: _same_type_pair(e, "!="),
        _ordered_pair,
        lambda e: f"{e('int')} == {e('double')}",
        lambda e: f"{e('uint')} < {e('double')}",
        lambda e: f"!{e('bool')}",
        lambda e: f"({e('bool')} && {e('bool')})",
        lambda e: f"({e('bool')} || {e('bool')} || {e('bool')})",
        lambda e: f"{e('string')}.startsWith({e('string')})",
        lambda e: f"{e('string')}.endsWith({e('string')})",
        lambda e: f"{e('string')}.contains({e('string')})",
        lambda e: f"{e('string')}.matches({_pattern(e)})",
        lambda e: f"{e('int')} in {e('list(int)')}",
        lambda e: f"{e('string')} in {e('map(string, int)')}",
        lambda e: f"{e('dyn')} in {e('list(string)')}",
        lambda e: f"has({e('map(string, int)')}.{_field(e)})",
        lambda e: "has(req.url.path)",
        lambda e: f"{e('list(int)')}.all(v, {_body(e, 'v', 'int', 'bool')})",
        lambda e: f"{e('list(string)')}.exists(w, {_body(e, 'w', 'string', 'bool')})",
        lambda e: f"{e('map(string, int)')}.exists_one(k, {_body(e, 'k', 'string', 'bool')})",
        lambda e: f"inCidrRange({_ip(e)}, {_cidr(e)})",
        lambda e: f"inCidrRanges({_ip(e)}, [{_cidr(e)}, {e('string')}])",
        lambda e: f"{e('string')}.isJson()",
        lambda e: f"{_url(e)}.isURL()",
        lambda e: f"url.parse({_url(e)}).{e('@urlflag')}",
        lambda e: f"utility.string_is_url({_url(e)})",
        lambda e: f"utility.in_cidr_range({_ip(e)}, {_cidr(e)})",
        lambda e: f"bool({e('string')})",
        lambda e: f"hasReqHeader({e('string')})",
        lambda e: f"{e('timestamp')} < {e('timestamp')}",
        lambda e: f"{e('duration')} >= {e('duration')}",
    ],
    "list(int)": [
        lambda e: f"[{e('int')}, {e('int')}]",
        lambda e: f"({e('list(int)')} + {e('list(int)')})",
        lambda e: f"{e('list(int)')}.map(v, {_body(e, 'v', 'int', 'int')})",
        lambda e: f"{e('list(int)')}.map(v, {_body(e, 'v', 'int', 'bool')}, v * 2)",
        lambda e: f"{e('list(int)')}.filter(v, {_body(e, 'v', 'int', 'bool')})",
        lambda e: f"{e('list(int)')}.slice(0, {e('int')})",
        lambda e: f"{e('list(int)')}.sort()",
        lambda e: f"{e('list(int)')}.distinct()",
        lambda e: f"{e('list(int)')}.sortBy(v, {_body(e, 'v', 'int', 'int')})",
        lambda e: f"{e('list(int)')}.sortBy(v, {_body(e, 'v', 'int', 'string')})",
        lambda e: f"lists.range({e('int')} % 5)",
    ],
    "list(string)": [
        lambda e: f"[{e('string')}, {e('string')}]",
        lambda e: f"{e('string')}.split({e('string')})",
        lambda e: f"{e('string')}.split({e('string')}, {e('int')})",
        lambda e: f"{e('map(string, int)')}.map(k, k)",
        lambda e: f"{e('list(string)')}.filter(w, {_body(e, 'w', 'string', 'bool')})",
        lambda e: f"getReqHeader({e('string')})",
        lambda e: f"{e('list(string)')}.sortBy(w, {_body(e, 'w', 'string', 'dyn')})",
    ],
    "map(string, int)": [
        lambda e: f"{{{e('string')}: {e('int')}}}",
        lambda e: f"{{{e('string')}: {e('int')}, {e('string')}: {e('int')}}}",
    ],
    "dyn": [
        lambda e: f"dyn({e(_ANY_KEY)})",
        lambda e: f"json.decode({e('string')})",
        lambda e: f"x.{_field(e)}",
        lambda e: f"x[{e('dyn')}]",
        lambda e: f"({e('dyn')} + {e('dyn')})",
        lambda e: f"type({e('dyn')})",
        lambda e: f"[{e('dyn')}, {e('int')}]",
        lambda e: f"{{{e('string')}: {e('dyn')}}}",
        lambda e: f"{e('dyn')}.size()",
        lambda e: f"url.parse({_url(e)})",
        lambda e: f"[{e('dyn')}, {e('dyn')}].sortBy(z, {_body(e, 'z', 'dyn', 'dyn')})",
        lambda e: f"{e('dyn')}.sortBy(z, z)",
    ],
    "timestamp": [
        lambda e: f"({e('timestamp')} + {e('duration')})",
        lambda e: f"({e('timestamp')} - {e('duration')})",
        lambda e: f"timestamp({e('int')})",
        lambda e: f"timestamp({e('string')})",
    ],
    "duration": [
        lambda e: f"({e('duration')} + {e('duration')})",
        lambda e: f"({e('timestamp')} - {e('timestamp')})",
        lambda e: f"duration({e('string')})",
    ],
}
_SPECIAL: dict[str, st.SearchStrategy[str]] = {
    "@type": st.sampled_from(["int", "string", "double", "bool", "list(int)", "dyn", "bytes"]),
    "@ordered": st.sampled_from(["int", "uint", "double", "string", "bytes", "bool"]),
    "@relop": st.sampled_from(["<", "<=", ">", ">="]),
    "@field": st.sampled_from(["a", "k", "name", "`content-type`", "as"]),
    "@pattern": PATTERNS.map(cel_string),
    "@zone": ZONES.map(cel_string),
    "@ip": IPS.map(cel_string),
    "@cidr": CIDRS.map(cel_string),
    "@url": st.one_of(URLS.map(cel_string), st.just("s"), st.just("req.url")),
    "@urlfield": st.sampled_from(
        ["scheme", "opaque", "host", "path", "raw_path", "raw_query", "fragment", "raw_fragment"]
    ),
    "@urlflag": st.sampled_from(["omit_host", "force_query", "user.password_set"]),
    "@userfield": st.sampled_from(["username", "password"]),
    "@hashformat": st.sampled_from(["'hex'", "'base64'", "'HEX'"]),
    "@secret": st.one_of(SECRET_NAMES, st.just("s"), st.just("dyn(t)")),
}


@st.composite
def expressions(draw: st.DrawFn, t: str, depth: int = 3, chaos: int = 0, scope: Scope = ()) -> str:
    """CEL source of static type `t` (see the module docstring)."""
    if t == _ANY_KEY or (chaos and draw(st.integers(0, chaos - 1)) == 0):
        t = draw(st.sampled_from(TYPES))
    names = [name for name, var_type in scope if var_type == t] + _VARIABLES.get(t, [])
    if depth <= 0 or draw(st.integers(0, 3)) == 0:
        if names and draw(st.booleans()):
            return draw(st.sampled_from(names))
        return draw(literals(t))

    def sub(kind: str) -> str:
        if kind in _SPECIAL:
            return draw(_SPECIAL[kind])
        if kind.startswith("@scope:"):
            _, var, var_type, result = kind.split(":", 3)
            inner = ((var, var_type), *scope)
            return draw(expressions(result, depth - 1, chaos, inner))
        return draw(expressions(kind, depth - 1, chaos, scope))

    production = draw(st.sampled_from(_PRODUCTIONS[t]))
    text = production(sub)
    return f"dyn({text})" if t == "dyn" else f"({text})"


# --- activations ------------------------------------------------------------------------------

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
DATETIMES = st.datetimes(
    min_value=datetime.datetime(1, 1, 2),
    max_value=datetime.datetime(9999, 12, 30),
    timezones=st.just(datetime.UTC),
)
TIMEDELTAS = st.timedeltas(
    min_value=datetime.timedelta(days=-100_000), max_value=datetime.timedelta(days=100_000)
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    INT64,
    UINT64.map(UInt),
    DOUBLES,
    TEXT,
    BYTES,
    DATETIMES,
    TIMEDELTAS,
)
DYN_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.one_of(TEXT, INT64), inner, max_size=3)
    ),
    max_leaves=6,
)

_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "int": INT64,
    "uint": UINT64.map(UInt),
    "double": DOUBLES,
    "string": TEXT,
    "bytes": BYTES,
    "bool": st.booleans(),
    "list(int)": st.lists(INT64, max_size=4),
    "list(string)": st.lists(TEXT, max_size=4),
    "map(string, int)": st.dictionaries(
        st.one_of(st.sampled_from(["a", "k", "name", "content-type", "as"]), TEXT),
        INT64,
        max_size=4,
    ),
    "dyn": DYN_VALUES,
    "timestamp": DATETIMES,
    "duration": TIMEDELTAS,
}
HEADERS = st.dictionaries(
    st.sampled_from(["host", "content-type", "x-a", "a", "k"]),
    st.lists(TEXT, min_size=1, max_size=2),
    max_size=3,
)


@st.composite
def activations(draw: st.DrawFn) -> dict[str, Any]:
    """Values for `SCHEMA`; now and then a variable or field is absent."""
    out: dict[str, Any] = {}
    for name, t in SCHEMA.items():
        if draw(st.integers(0, 15)) == 0:
            continue  # absent: `unbound` when read
        if name == "req":
            url = {"": draw(TEXT), "path": draw(TEXT), "query": draw(TEXT)}
            if draw(st.integers(0, 7)) == 0:
                del url["path"]
            out[name] = {"url": url, "headers": draw(HEADERS), "method": draw(TEXT)}
        else:
            out[name] = draw(_VALUES[t])
    return out


# --- hostile input ------------------------------------------------------------------------------

_TOKENS = [
    "(", ")", "[", "]", "{", "}", ".", ",", ":", "?", "!", "-", "+", "*", "/", "%",
    "==", "!=", "<", "<=", ">", ">=", "&&", "||", " in ", "1", "1u", "1.5", "'a'", "b'x'",
    "x", "y", "i", "s", "li", "ms", "size", "has", "all", "map", "exists_one", "`a`", "true",
    "null", "\"\"\"", "r'", "\\", "$", "#", "é", "\n", " ",
]  # fmt: skip


def hostile_sources(max_depth: int = 64) -> st.SearchStrategy[str]:
    """Deep nesting around and beyond `max_depth`, long operator chains,
    token soup and raw text: compile must raise PolicyExprError or succeed."""
    deep = st.tuples(
        st.sampled_from(
            [
                ("(", ")"),
                ("[", "]"),
                ("{1: ", "}"),
                ("!", ""),
                ("-", ""),
                ("true ? 1 : ", ""),
                ("f(", ")"),
                ("[1].map(z, ", ")"),
                ("dyn(", ")"),
                ("x.", ""),
            ]
        ),
        st.integers(max_depth - 3, max_depth * 4),
    ).map(lambda p: p[0][0] * p[1] + "1" + p[0][1] * p[1])
    chains = st.tuples(st.sampled_from(["+", "&&", "||", "*", "==", "."]), st.integers(1, 400)).map(
        lambda p: p[0].join(["1"] * p[1]) if p[0] != "." else "x" + ".a" * p[1]
    )
    soup = st.lists(st.sampled_from(_TOKENS), max_size=40).map("".join)
    raw = st.text(alphabet=string.printable + "éλ\u2028\x00", max_size=60)
    return st.one_of(deep, chains, soup, raw)
