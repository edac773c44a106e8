"""Resource limits both twins share (docs/cel.md §8): how deep a walk of a
whole value may go (MAX_VALUE_DEPTH), and how long a built string may grow
(MAX_SIZE), checked before the result is built."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import edgeward.expr as reference
from edgeward.expr.values import MAX_SIZE, MAX_VALUE_DEPTH

from .backends import native_cel


def nested_list(depth: int) -> Any:
    """`depth` lists inside each other, built without recursion."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def nested_dict(depth: int) -> Any:
    value: Any = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def outcome(cel: ModuleType, source: str, activation: dict[str, Any]) -> tuple[str, Any]:
    try:
        result = cel.compile(source).evaluate(activation)
    except cel.EvalError as exc:
        return ("error", exc.kind)
    return ("value", result)


def kind_of(cel: ModuleType, source: str, activation: dict[str, Any]) -> str:
    result = outcome(cel, source, activation)
    return result[1] if result[0] == "error" else "value"


# --- depth ---------------------------------------------------------------------------------

WALKS = [
    "x == x",
    "[x] == [x]",
    "x in [x]",
    "json.encode(x)",
    "'%s'.format([x])",
    "x",  # the result converted back to Python
    "[x].flatten(100000)",
    "[x, x].distinct()",
]


@pytest.mark.parametrize("source", WALKS)
@pytest.mark.parametrize("make", [nested_list, nested_dict])
def test_a_walk_deeper_than_the_limit_is_a_limit_error(
    cel: ModuleType, source: str, make: Any
) -> None:
    if "flatten" in source and make is nested_dict:
        pytest.skip("flatten walks lists only")
    assert kind_of(cel, source, {"x": make(MAX_VALUE_DEPTH + 1)}) == "limit"
    assert kind_of(cel, source, {"x": make(MAX_VALUE_DEPTH - 1)}) == "value"


@pytest.mark.parametrize("make", [nested_list, nested_dict])
def test_the_depth_limit_is_exact(cel: ModuleType, make: Any) -> None:
    """A value `MAX_VALUE_DEPTH` lists/maps deep is walked; one more is not."""
    assert kind_of(cel, "json.encode(x)", {"x": make(MAX_VALUE_DEPTH)}) == "value"
    assert kind_of(cel, "json.encode(x)", {"x": make(MAX_VALUE_DEPTH + 1)}) == "limit"


@pytest.mark.parametrize("make", [nested_list, nested_dict])
def test_very_deep_host_values_are_read_without_crashing(cel: ModuleType, make: Any) -> None:
    """100 000 levels: the native conversion must not recurse that deep (a
    stack overflow would kill the process, not raise)."""
    deep = make(100_000)
    assert outcome(cel, "size(x)", {"x": deep}) == ("value", 1)
    assert kind_of(cel, "x == x", {"x": deep}) == "limit"
    assert kind_of(cel, "json.encode(x)", {"x": deep}) == "limit"
    assert kind_of(cel, "x", {"x": deep}) == "limit"
    template = cel.interpolate("value: ${x}")
    with pytest.raises(cel.EvalError) as caught:
        template.render({"x": deep})
    assert caught.value.kind == "limit"


def test_an_index_chain_then_a_walk_agrees() -> None:
    """The native twin converts host lists eagerly (at most 200 levels), the
    reference reads them lazily: an index chain followed by a full walk never
    tells them apart."""
    native = native_cel()
    if native is None:
        pytest.skip("the native CEL is not built")
    deep = nested_list(250)
    for hops in (1, 50, 99):
        source = "json.encode(x" + "[0]" * hops + ")"
        env_args = {"max_depth": 100}
        for walk_depth in (MAX_VALUE_DEPTH - 1, MAX_VALUE_DEPTH + 1):
            value = nested_list(hops + walk_depth)
            got = [
                outcome_with_env(cel, source, {"x": value}, env_args) for cel in (reference, native)
            ]
            assert got[0] == got[1], (hops, walk_depth)
    assert outcome_with_env(native, "size(x)", {"x": deep}, {}) == ("value", 1)


def outcome_with_env(
    cel: ModuleType, source: str, activation: dict[str, Any], env_args: dict[str, Any]
) -> tuple[str, Any]:
    try:
        program = cel.compile(source, env=cel.Env(**env_args))
    except cel.PolicyExprError:
        return ("compile_error", None)
    try:
        return ("value", program.evaluate(activation))
    except cel.EvalError as exc:
        return ("error", exc.kind)


# --- size ----------------------------------------------------------------------------------


def test_replace_checks_the_size_before_building(cel: ModuleType) -> None:
    """A 1 MiB string with every character replaced by itself would need
    1 TiB: `limit` at once, nothing allocated."""
    big = "a" * MAX_SIZE
    assert kind_of(cel, "s.replace('a', s)", {"s": big}) == "limit"
    assert kind_of(cel, "s.replace('', s)", {"s": big}) == "limit"
    assert kind_of(cel, "s.replace('a', s, 1)", {"s": big}) == "limit"
    assert outcome(cel, "s.replace('a', 'b', 0) == s", {"s": "a" * 10}) == ("value", True)
    assert kind_of(cel, "s.replace('a', 'b', 0)", {"s": "a" * (MAX_SIZE + 1)}) == "limit"


def test_join_format_json_and_text_check_the_size(cel: ModuleType) -> None:
    """One long string many times in a list (cheap to build: shared)."""
    many = "lists.range(2000).map(i, s)"
    act = {"s": "x" * 1000}
    assert kind_of(cel, f"{many}.join()", act) == "limit"
    assert kind_of(cel, f"{many}.join(s)", {"s": "x" * 10}) == "value"
    assert kind_of(cel, f"'%s'.format([{many}])", act) == "limit"
    assert kind_of(cel, f"json.encode({many})", act) == "limit"
    assert kind_of(cel, "'%s%s%s'.format([s, s, s])", {"s": "x" * 400_000}) == "limit"
    assert kind_of(cel, "'%s%s'.format([s, s])", {"s": "x" * 400_000}) == "value"
    with pytest.raises(cel.EvalError) as caught:
        cel.interpolate("${" + many + "}").render(act)
    assert caught.value.kind == "limit"


# --- agreement near the limits ------------------------------------------------------------

SIZE_SOURCES = [
    "s.replace(a, b)",
    "s.replace(a, b, n)",
    "s.replace('', b, n)",
    "lists.range(n).map(i, s).join(b)",
    "'%s'.format([lists.range(n).map(i, s)])",
    "'%s%s' .format([s, b])",
    "json.encode(lists.range(n).map(i, s))",
    "json.encode({s: lists.range(n).map(i, b)})",
    "size([s, b].map(t, t.replace(a, b, n)).join(s))",
]


@given(
    source=st.sampled_from(SIZE_SOURCES),
    s=st.builds(str.__mul__, st.sampled_from(["a", "é", "ab", "😀"]), st.integers(0, 2**11)),
    b=st.builds(str.__mul__, st.sampled_from(["b", "€", "ba"]), st.integers(0, 2**10)),
    a=st.sampled_from(["a", "", "b", "é", "aa"]),
    n=st.integers(-1, 2**11),
)
@settings(max_examples=100)
def test_native_and_reference_agree_on_sizes(source: str, s: str, b: str, a: str, n: int) -> None:
    native = native_cel()
    if native is None:
        pytest.skip("the native CEL is not built")
    act = {"s": s, "b": b, "a": a, "n": n}
    expected = outcome(reference, source, act)
    got = outcome(native, source, act)
    assert got[0] == expected[0] and (got[0] == "value" or got[1] == expected[1]), source
    if got[0] == "value":
        assert got == expected, source


@given(
    depth=st.integers(1, MAX_VALUE_DEPTH + 5),
    make=st.sampled_from([nested_list, nested_dict]),
    source=st.sampled_from([*WALKS, "size(x)", "x.size() > 0 ? 'x' : 'y'"]),
)
@settings(max_examples=100)
def test_native_and_reference_agree_on_depth(depth: int, make: Any, source: str) -> None:
    native = native_cel()
    if native is None:
        pytest.skip("the native CEL is not built")
    act = {"x": make(depth)}
    ref = kind_of(reference, source, act)
    assert kind_of(native, source, act) == ref, (source, depth)
