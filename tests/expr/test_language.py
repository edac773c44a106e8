"""Language decisions of docs/cel.md that the conformance files do not pin:
error kinds, value mapping, the checker's gradual rules, limits, locations."""

from __future__ import annotations

import collections
import contextlib
import datetime
import math
import pickle
from typing import Any

import pytest

from .backends import is_reference


def evaluate(cel: Any, source: str, activation: dict[str, Any] | None = None, **env: Any) -> Any:
    variables = env.pop("variables", None)
    return cel.compile(source, env=cel.Env(variables, **env)).evaluate(activation or {})


def eval_error(cel: Any, source: str, activation: dict[str, Any] | None = None) -> str:
    with pytest.raises(cel.EvalError) as info:
        evaluate(cel, source, activation)
    return str(info.value.kind)


def compile_error(cel: Any, source: str, **env: Any) -> Any:
    variables = env.pop("variables", None)
    with pytest.raises(cel.PolicyExprError) as info:
        cel.compile(source, env=cel.Env(variables, **env))
    return info.value


# --- runtime error kinds (docs/cel.md §6) ---------------------------------------------


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("{'a': 1}['b']", "no_such_key"),
        ("{'a': 1}.b", "no_such_key"),
        ('{}[b""]', "no_such_key"),  # a map of dyn keys takes any index type
        ("{}[[1]]", "no_such_key"),
        ("dyn('a') + 1", "no_such_overload"),
        ("dyn('a').f", "no_such_overload"),
        ("!dyn(1)", "no_such_overload"),
        ("dyn(1) ? 1 : 2", "no_such_overload"),
        ("1 / 0", "division_by_zero"),
        ("1u % 0u", "modulus_by_zero"),
        ("9223372036854775807 + 1", "overflow"),
        ("-9223372036854775808 % -1", "overflow"),
        ("0u - 1u", "overflow"),
        ("int(1e19)", "range"),
        ("uint(-1)", "range"),
        ("int('99999999999999999999')", "range"),
        ("timestamp(253402300800)", "range"),
        ("duration(dyn('2562048h'))", "range"),
        ("[1][1]", "invalid_argument"),
        ("[1][dyn(0.5)]", "invalid_argument"),
        ("'abc'.substring(4)", "invalid_argument"),
        ("{1: 'a', 1u: 'b'}", "invalid_argument"),
        ("dyn(0.0/0.0) < 1", "invalid_argument"),
        ("timestamp(0).getHours(dyn('Mars/Base'))", "invalid_argument"),
        ("int('1.5')", "conversion"),
        ("bool('yes')", "conversion"),
        ("string(b'\\xff')", "conversion"),
        ("timestamp(dyn('yesterday'))", "conversion"),
        ("base64.decode('!!')", "conversion"),
        ("'a'.matches(dyn('('))", "regex"),
        ("x", "unbound"),
    ],
)
def test_error_kinds(cel: Any, source: str, kind: str) -> None:
    assert eval_error(cel, source) == kind


def test_logic_absorbs_errors_commutatively(cel: Any) -> None:
    for source in ("1/0 == 1 && false", "false && 1/0 == 1", "x || true", "true || x"):
        assert evaluate(cel, source) is (source.endswith("true") or source.startswith("true"))
    assert eval_error(cel, "1/0 == 1 || x") == "division_by_zero"  # the first error wins
    assert eval_error(cel, "x || 1/0 == 1") == "unbound"
    assert eval_error(cel, "dyn(1) && true") == "no_such_overload"
    assert evaluate(cel, "dyn(1) && false") is False
    assert evaluate(cel, "[1, 0].exists(v, 1 / v == 1)") is True
    assert evaluate(cel, "[0, 1].all(v, 1 / v == 2)") is False
    assert eval_error(cel, "[0, 1].all(v, 1 / v == 1)") == "division_by_zero"
    assert eval_error(cel, "[1, 0].exists_one(v, 1 / v == 1)") == "division_by_zero"


def test_even_runs_of_unary_operators_cancel(cel: Any) -> None:
    assert evaluate(cel, "!!true") is True
    assert evaluate(cel, "--5") == 5
    assert evaluate(cel, "- -5") == 5


# --- numbers -------------------------------------------------------------------------


def test_heterogeneous_numbers(cel: Any) -> None:
    assert evaluate(cel, "1 == 1u && 1u == 1.0 && dyn(2) in [1.0, 2.0]") is True
    assert evaluate(cel, "dyn(9223372036854775807) == 9223372036854775808.0") is True
    assert evaluate(cel, "dyn(18446744073709551615u) > 1e30") is False
    assert evaluate(cel, "{1: 'a'}[1.0] == 'a' && !(1.5 in {1: 'a'})") is True
    assert evaluate(cel, "0.0/0.0 == 0.0/0.0") is False


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0"),
        (-0.0, "-0"),
        (1.0, "1"),
        (123.456, "123.456"),
        (-0.0045, "-0.0045"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (123456.0, "123456"),
        (1000000.0, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (1.5e300, "1.5e+300"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
    ],
)
def test_double_to_string(cel: Any, value: float, text: str) -> None:
    assert evaluate(cel, "string(d)", {"d": value}) == text


def test_conversions(cel: Any) -> None:
    assert evaluate(cel, "int(-1.9)") == -1
    assert evaluate(cel, "uint(-0.0)") == 0
    assert eval_error(cel, "uint(-0.5)") == "range"
    assert evaluate(cel, "double('-Infinity')") == -math.inf
    assert eval_error(cel, "double('1e999')") == "conversion"
    assert evaluate(cel, "int('+42')") == 42
    assert eval_error(cel, "uint('+42')") == "conversion"
    assert evaluate(cel, "string(duration('-1.5s'))") == "-1.5s"
    assert evaluate(cel, "string(duration('1ns'))") == "0.000000001s"
    assert evaluate(cel, "string(timestamp('2024-02-29T12:00:00.120+02:00'))") == (
        "2024-02-29T10:00:00.12Z"
    )
    assert evaluate(cel, "type(1u) == uint && type(type(1)) == type") is True


# --- the value mapping (docs/cel.md §5) -------------------------------------------------


def test_values_in_and_out(cel: Any) -> None:
    now = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.UTC)
    activation = {
        "n": None,
        "i": 7,
        "u": cel.UInt(7),
        "d": 1.5,
        "s": "é",
        "b": bytearray(b"\x00"),
        "l": (1, "a"),
        "m": {"k": [1]},
        "ts": now,
        "naive": datetime.datetime(2024, 1, 1),
        "du": datetime.timedelta(seconds=-1.5),
    }
    result = evaluate(cel, "[n, i, u, d, s, b, l, m, ts, naive, du, type(u)]", activation)
    assert result == [
        None,
        7,
        cel.UInt(7),
        1.5,
        "é",
        b"\x00",
        [1, "a"],
        {"k": [1]},
        now,
        datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
        datetime.timedelta(seconds=-1.5),
        cel.UInt,
    ]
    assert type(result[2]) is cel.UInt
    point = collections.namedtuple("point", "x y")(1, 2)
    assert evaluate(cel, "p[1] + size(p)", {"p": point}) == 4
    assert type(result[5]) is bytes
    assert evaluate(cel, "type(1) == int") is True
    assert evaluate(cel, "timestamp('2024-01-01T00:00:00.123456789Z')") == datetime.datetime(
        2024, 1, 1, 0, 0, 0, 123456, tzinfo=datetime.UTC
    )


def test_python_values_without_cel_type(cel: Any) -> None:
    assert eval_error(cel, "x", {"x": object()}) == "invalid_argument"
    assert eval_error(cel, "x[0]", {"x": [{1, 2}]}) == "invalid_argument"
    assert eval_error(cel, "x", {"x": 2**64}) == "range"
    assert eval_error(cel, "x", {"x": "a\ud800"}) == "invalid_argument"
    assert evaluate(cel, "size(x)", {"x": [object()]}) == 1  # never read


# --- the checker (docs/cel.md §4) -------------------------------------------------------

_DECLS = {
    "i": "int",
    "s": "string",
    "l": "list(string)",
    "m": "map(string, int)",
    "x": "dyn",
    "req": {"url": {"": "string", "path": "string"}, "method": "string"},
}


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("nope", "undeclared reference to 'nope'"),
        ("req.body", "undefined field 'body'"),
        ("has(req.body)", "undefined field 'body'"),
        ("i.f", "does not support field selection"),
        ("frobnicate(1)", "undeclared reference to function 'frobnicate'"),
        ("s.startsWith()", "no overload of 'startsWith' takes 0 arguments"),
        ("s.startsWith(1)", "found no matching overload for 'startsWith'"),
        ("i + s", "found no matching overload for '_+_'"),
        ("1 + 1u", "found no matching overload for '_+_'"),
        ("i == s", "cannot compare"),
        ("s < 1", "cannot order"),
        ("l[s]", "list index"),
        ("m[1]", "key"),
        ("i ? 1 : 2", "expected a bool"),
        ("s.matches('(')", "invalid constant argument"),
        ("inCidrRange(s, '10.0.0.0/33')", "invalid constant argument"),
        ("timestamp('2024-13-01T00:00:00Z')", "invalid constant argument"),
        ("{1.5: 1}", "unsupported map key type"),
        ("l.all(e, e)", "expected a bool"),
        ("i.all(e, true)", "needs a list or a map"),
        ("has(i)", "field selection"),
        ("[1].map(1, 2)", "must be a name"),
        ("A{}", "message construction"),
        ("if", "reserved identifier"),
        ("!-s", "unexpected"),
    ],
)
def test_compile_errors(cel: Any, source: str, message: str) -> None:
    error = compile_error(cel, source, variables=_DECLS)
    assert message in error.message or not is_reference(cel)


@pytest.mark.parametrize(
    "source",
    [
        "x + 1",
        "x.anything.at[0]",
        "x == 'a' && x < 2",
        "req.url.startsWith('https') && req.url.path == '/'",
        "req.url + req.method",
        "[req.url, 1][0]",
        "dyn(req) == {}",
        "m.k + i",
        "size(req.url) > 1",
        "conn.client_ip.as.number > 0 || conn.k8s.pod.metadata.namespace == 'a'",
        "google.protobuf.Timestamp == type(timestamp(0))",
    ],
)
def test_gradual_typing_accepts(cel: Any, source: str) -> None:
    variables = {
        **_DECLS,
        "conn": {
            "client_ip": {"": "string", "as": {"number": "int"}},
            "k8s": {"pod": {"metadata": {"namespace": "string"}}},
        },
    }
    cel.compile(source, env=cel.Env(variables))


def test_no_variables_declared_means_everything_is_dyn(cel: Any) -> None:
    assert evaluate(cel, "a.b + 1", {"a": {"b": 2}}) == 3
    compile_error(cel, "a", variables={})  # nothing declared: an unknown name


def test_env_validates_declarations(cel: Any) -> None:
    for bad in ({"x": "strin"}, {"x": "list(int"}, {"x": "map(double, int)"}, {"x": 3}):
        with pytest.raises(ValueError):
            cel.Env(bad)
    with pytest.raises(ValueError):
        cel.Env(max_depth=0)
    with pytest.raises(ValueError):
        cel.Env(max_depth=101)


def test_deepest_allowed_nesting_fits_the_stack(cel: Any) -> None:
    env = cel.Env({"x": "dyn"}, max_depth=100, max_source_length=100_000)
    for open_, close in [("dyn(", ")"), ("[", "]"), ("x.map(v, ", ")"), ("true ? 1 : ", "")]:
        program = cel.compile(open_ * 99 + "1" + close * 99, env=env)
        with contextlib.suppress(cel.EvalError):
            program.evaluate({"x": [1]})


# --- limits (docs/cel.md §8) ---------------------------------------------------------------


def test_max_source_length(cel: Any) -> None:
    error = compile_error(cel, "1 + 1", max_source_length=4)
    assert (error.line, error.column) == (1, 1)
    cel.compile("1+1", env=cel.Env(max_source_length=3))


@pytest.mark.parametrize(
    ("open_", "close"),
    [("(", ")"), ("[", "]"), ("{1: ", "}"), ("dyn(", ")"), ("x.map(v, ", ")"), ("x[", "]")],
)
def test_max_depth(cel: Any, open_: str, close: str) -> None:
    def nested(n: int) -> str:
        return open_ * n + "1" + close * n

    env = cel.Env(max_depth=10)
    cel.compile(nested(9), env=env)  # 9 levels around a literal: depth 10
    with pytest.raises(cel.PolicyExprError, match="nested too deeply"):
        cel.compile(nested(10), env=env)
    with pytest.raises(cel.PolicyExprError, match="nested too deeply"):
        cel.compile(nested(5000), env=cel.Env(max_source_length=100_000))


def test_long_chains(cel: Any) -> None:
    env = cel.Env(max_depth=10)
    assert cel.compile(" || ".join(["false"] * 200) + " || true", env=env).evaluate({}) is True
    cel.compile(" + ".join(["1"] * 10), env=env)  # 9 left-nested additions: depth 10
    with pytest.raises(cel.PolicyExprError, match="nested too deeply"):
        cel.compile(" + ".join(["1"] * 11), env=env)
    with pytest.raises(cel.PolicyExprError, match="nested too deeply"):
        cel.compile("x" + ".a" * 5000, env=cel.Env(max_source_length=100_000))


def test_max_iterations(cel: Any) -> None:
    env = cel.Env(max_iterations=100)
    nine = "[1, 2, 3, 4, 5, 6, 7, 8, 9]"
    ten = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"
    # 10 outer + 10 x 9 inner = 100 iterations: the limit is inclusive.
    within = cel.compile(f"{ten}.all(a, {nine}.filter(b, b > 0).size() == 9)", env=env)
    assert within.evaluate({}) is True
    assert within.evaluate({}) is True  # the count is per evaluation
    program = cel.compile(f"{ten}.all(a, {ten}.all(b, true))", env=env)  # 110
    with pytest.raises(cel.EvalError) as info:
        program.evaluate({})
    assert info.value.kind == "limit"


def test_result_size_limit(cel: Any) -> None:
    source = "'" + "a" * 16 + "'" + ".replace('a', 'aaaaaaaaaa')" * 6
    assert eval_error(cel, source) == "limit"
    assert eval_error(cel, "lists.range(2000000)") == "limit"


# --- error locations ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "line", "column"),
    [
        ("1 +", 1, 4),
        ("a.b &&\n  c.d(]", 2, 7),
        ("true &&\n\t\tnope", 2, 3),
        ("'unterminated", 1, 1),
        ("'é' + 1 +\n  é", 2, 3),
        ("x\n\n  + 'a' + 1u", 3, 9),
        ("req.body", 1, 5),
    ],
)
def test_error_locations(cel: Any, source: str, line: int, column: int) -> None:
    variables = {"x": "string", "a": "dyn", "c": "dyn", "req": {"url": "string"}}
    error = compile_error(cel, source, variables=variables)
    assert (error.line, error.column) == (line, column), error
    assert error.source == source
    assert str(error).startswith(f"{line}:{column}: ")


def test_errors_pickle(cel: Any) -> None:
    error = compile_error(cel, "1 +\n+")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.line, copy.column, copy.source) == (
        error.message,
        error.line,
        error.column,
        error.source,
    )
    with pytest.raises(cel.EvalError) as info:
        evaluate(cel, "1/0")
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.kind, copy.message) == ("division_by_zero", info.value.message)


# --- strings, time -----------------------------------------------------------------------


def test_string_extension_edges(cel: Any) -> None:
    assert evaluate(cel, "'a,b,c'.split(',', 2)") == ["a", "b,c"]
    assert evaluate(cel, "'abc'.split('')") == ["a", "b", "c"]
    assert evaluate(cel, "'ab'.replace('', '-')") == "-a-b-"
    assert evaluate(cel, "' \\u00a0x\\u2003'.trim()") == "x"
    assert evaluate(cel, "'\\x1cx'.trim()") == "\x1cx"  # not White_Space
    assert evaluate(cel, "['a', 'b'].join(', ')") == "a, b"
    assert eval_error(cel, "dyn(['a', 1]).join()") == "no_such_overload"
    assert evaluate(cel, "'%.3e|%x|%X|%o|%b'.format([1234.5, -255, 'hi', 8, -5])") == (
        "1.234e+03|-ff|6869|10|-101"
    )
    assert evaluate(cel, "'%s'.format([{'b': 1, 'a': [1.0, null]}])") == "{a: [1, null], b: 1}"
    assert eval_error(cel, "'%d'.format(['a'])") == "invalid_argument"


def test_time_zones(cel: Any) -> None:
    ts = "timestamp('2024-03-10T06:59:59Z')"
    assert evaluate(cel, f"{ts}.getHours('America/New_York')") == 1
    assert evaluate(cel, f"({ts} + duration('1s')).getHours('America/New_York')") == 3  # DST
    assert evaluate(cel, f"{ts}.getMinutes('+05:45')") == 44
    assert evaluate(cel, "timestamp('0001-01-01T00:00:00Z').getFullYear('-01:00')") == 0
    assert evaluate(cel, "timestamp('9999-12-31T23:59:59Z').getFullYear('Pacific/Kiritimati')") == (
        10000
    )
