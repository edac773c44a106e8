"""`${...}` templates (docs/cel.md §10)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from .backends import is_reference


@pytest.mark.parametrize(
    ("template", "activation", "text"),
    [
        ("plain text", {}, "plain text"),
        ("", {}, ""),
        ("Hello ${name}!", {"name": "Ada"}, "Hello Ada!"),
        ("${a}${b}", {"a": 1, "b": 2.5}, "12.5"),
        ("${ {'k': '}'}['k'] }", {}, "}"),
        ("${'${'}", {}, "${"),
        ("cost: $5, ${n}$", {"n": 1}, "cost: $5, 1$"),
        ("$${literal} and ${n}", {"n": True}, "${literal} and true"),
        ("$$${n}", {"n": 1}, "$${n}"),  # left to right: "$", then the escape "$${"
        ("${n}", {"n": None}, ""),
        ("${l}", {"l": ["a", 1, 1.5, None]}, "[a, 1, 1.5, null]"),
        ("${m}", {"m": {"b": 1, "a": [2]}}, "{a: [2], b: 1}"),
        ("${b}", {"b": b"caf\xc3\xa9"}, "café"),
        ("${d}", {"d": 1e6}, "1e+06"),
        ("${t}", {"t": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)},
         "2024-01-02T03:04:05Z"),
        ("${du}", {"du": datetime.timedelta(minutes=90)}, "5400s"),
        ("${type(1)}", {}, "int"),
        ("multi\nline ${x\n + 1} end", {"x": 1}, "multi\nline 2 end"),
    ],
)  # fmt: skip
def test_render(cel: Any, template: str, activation: dict[str, Any], text: str) -> None:
    compiled = cel.interpolate(template)
    assert compiled.render(activation) == text
    assert compiled.source == template
    assert compiled.is_constant == ("${" not in template.replace("$${", ""))


@pytest.mark.parametrize(
    ("template", "line", "column", "message"),
    [
        ("abc ${", 1, 5, "unterminated"),
        ("abc ${ 1 + ", 1, 5, "unterminated"),
        ("x ${}", 1, 3, "empty"),
        ("x ${  }", 1, 3, "empty"),
        ("line one\nline ${two +} three", 2, 13, "unexpected end"),
        ("a\n  b ${req.nope}", 2, 11, "undefined field"),
        ("${'unterminated}", 1, 3, "unterminated string"),
        ("ok ${1} then\n\n   ${1 + 'a'}", 3, 8, "no matching overload"),
    ],
)
def test_errors_are_located_in_the_template(
    cel: Any, template: str, line: int, column: int, message: str
) -> None:
    with pytest.raises(cel.PolicyExprError) as info:
        cel.interpolate(template, env=cel.Env({"req": {"url": "string"}}))
    error = info.value
    assert (error.line, error.column) == (line, column), error
    assert message in error.message or not is_reference(cel)  # messages: reference only
    assert error.source == template


def test_references_and_constants(cel: Any) -> None:
    env = cel.Env({"req": {"url": {"": "string", "path": "string"}, "host": "string"}})
    template = cel.interpolate("https://${req.host}${req.url.path}?from=${req.url}", env=env)
    assert template.references == frozenset({"req.host", "req.url.path", "req.url"})
    assert not template.is_constant
    constant = cel.interpolate("no expressions, $${not one}", env=env)
    assert constant.is_constant
    assert constant.references == frozenset()
    assert constant.render({}) == "no expressions, ${not one}"


def test_render_errors(cel: Any) -> None:
    template = cel.interpolate("a ${x.y} b")
    with pytest.raises(cel.EvalError) as info:
        template.render({"x": {}})
    assert info.value.kind == "no_such_key"
    with pytest.raises(cel.EvalError) as info:
        cel.interpolate("${b}").render({"b": b"\xff"})
    assert info.value.kind == "conversion"


def test_each_expression_has_its_own_limits(cel: Any) -> None:
    env = cel.Env(max_source_length=10)
    long_text = "x" * 100 + "${1 + 2}" + "y" * 100
    assert cel.interpolate(long_text, env=env).render({}) == "x" * 100 + "3" + "y" * 100
    with pytest.raises(cel.PolicyExprError):
        cel.interpolate("${1 + 2 + 3 + 4 + 5}", env=env)
