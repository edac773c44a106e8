"""Native and reference CEL agree on generated expressions: the same value,
or the same error kind (compile error, or `EvalError.kind`).

Until the native CEL exists the agreement test skips, but the generator still
runs against every available backend: well-typed expressions compile and
evaluate to values of their static type or to an `EvalError`; ill-typed and
hostile input never raises anything but `PolicyExprError`/`EvalError`.
"""

from __future__ import annotations

import datetime
import math
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import edgeward.expr as reference

from . import strategies as cel_st
from .backends import BACKENDS, backend_module, for_backend, native_cel

BATCH = 10  # expressions per example
# Generating an expression costs ~10 ms: a third of the profile's examples
# (x BATCH) keeps each test to ~10 s in CI while still running 1000+
# expressions; the agreement test itself runs the full profile (3000).
_EXAMPLES = max(settings.default.max_examples // 3, 20)


def normalize(value: Any) -> Any:
    """A result as a comparable, kind-preserving structure."""
    if value is None or isinstance(value, bool | str | bytes):
        return (type(value).__name__, value)
    if type(value).__name__ == "UInt":  # the backend's own UInt class
        return ("uint", int(value))
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("double", "nan" if math.isnan(value) else value.hex())
    if isinstance(value, list):
        return ("list", tuple(normalize(v) for v in value))
    if isinstance(value, dict):
        return ("map", tuple(sorted((repr(normalize(k)), normalize(v)) for k, v in value.items())))
    if isinstance(value, datetime.datetime | datetime.timedelta):
        return (type(value).__name__, value)
    if isinstance(value, type):
        return ("type", "uint" if value.__name__ == "UInt" else value.__name__)
    raise AssertionError(f"unexpected result type {type(value).__name__}: {value!r}")


def outcome(cel: ModuleType, source: str, activation: dict[str, Any]) -> tuple[Any, ...]:
    try:
        program = cel.compile(source, env=cel.Env(cel_st.SCHEMA, secrets=cel_st.SECRETS))
    except cel.PolicyExprError as exc:
        assert isinstance(exc, ValueError)
        assert exc.line >= 1 and exc.column >= 1
        return ("compile_error",)
    try:
        return ("value", normalize(program.evaluate(for_backend(activation, cel))))
    except cel.EvalError as exc:
        return ("eval_error", exc.kind)


_STATIC_KINDS = {
    "int": "int",
    "uint": "uint",
    "double": "double",
    "string": "str",
    "bytes": "bytes",
    "bool": "bool",
    "list(int)": "list",
    "list(string)": "list",
    "map(string, int)": "map",
    "timestamp": "datetime",
    "duration": "timedelta",
}


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data())
@settings(max_examples=_EXAMPLES)
def test_well_typed_expressions_compile_and_keep_their_type(
    backend: str, data: st.DataObject
) -> None:
    cel = backend_module(backend)
    activation = data.draw(cel_st.activations())
    for _ in range(BATCH):
        t = data.draw(st.sampled_from(cel_st.TYPES))
        source = data.draw(cel_st.expressions(t))
        try:
            cel.compile(source, env=cel.Env(cel_st.SCHEMA, secrets=cel_st.SECRETS))
        except cel.PolicyExprError as exc:
            # Only a literal argument that cannot work (a bad regex, zone,
            # timestamp...) may reject a well-typed expression.
            assert exc.message.startswith("invalid constant argument"), (source, exc)
            continue
        result = outcome(cel, source, activation)
        assert result[0] in ("value", "eval_error"), (source, result)
        if result[0] == "value" and t in _STATIC_KINDS:
            assert result[1][0] == _STATIC_KINDS[t], (source, t, result)
        assert outcome(cel, source, activation) == result, source  # deterministic


@pytest.mark.parametrize("backend", BACKENDS)
@given(data=st.data())
@settings(max_examples=_EXAMPLES)
def test_ill_typed_expressions_raise_only_cel_errors(backend: str, data: st.DataObject) -> None:
    cel = backend_module(backend)
    activation = data.draw(cel_st.activations())
    for _ in range(BATCH):
        t = data.draw(st.sampled_from(cel_st.TYPES))
        source = data.draw(cel_st.expressions(t, chaos=4))
        outcome(cel, source, activation)


@pytest.mark.parametrize("backend", BACKENDS)
@given(source=cel_st.hostile_sources())
@settings(max_examples=_EXAMPLES * 2)
def test_hostile_input_raises_only_cel_errors(backend: str, source: str) -> None:
    cel = backend_module(backend)
    outcome(cel, source, {"x": {"a": [1]}, "s": "a", "i": 1})


@given(data=st.data())
def test_native_agrees_with_reference(data: st.DataObject) -> None:
    native = native_cel()
    if native is None:
        pytest.skip("the native CEL is not built (edgeward.native uses the reference)")
    activation = data.draw(cel_st.activations())
    for _ in range(BATCH):
        t = data.draw(st.sampled_from(cel_st.TYPES))
        chaos = data.draw(st.sampled_from([0, 0, 4]))
        source = data.draw(cel_st.expressions(t, chaos=chaos))
        expected = outcome(reference, source, activation)
        assert outcome(native, source, activation) == expected, source
        if expected[0] != "compile_error":
            assert static_type(native, source) == static_type(reference, source), source


def static_type(cel: ModuleType, source: str) -> str:
    """The checker's type of the result (`Program.result_type`)."""
    return str(cel.compile(source, env=cel.Env(cel_st.SCHEMA)).result_type)


@given(source=cel_st.hostile_sources())
@settings(max_examples=_EXAMPLES * 2)
def test_native_agrees_with_reference_on_hostile_input(source: str) -> None:
    native = native_cel()
    if native is None:
        pytest.skip("the native CEL is not built (edgeward.native uses the reference)")
    activation = {"x": {"a": [1]}, "s": "a", "i": 1}
    assert outcome(native, source, activation) == outcome(reference, source, activation)
