"""Config values of any shape whose strings are interpolated (`set-vars`
values, `log` metadata).

A string that is exactly one ``${expr}`` keeps the expression's type (a
number stays a number); any other string with ``${...}`` is rendered as
text; lists and mappings are walked; everything else is a constant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from edgeward import native
from edgeward.document import PathKey
from edgeward.policy.config import ConfigReader, InvalidConfig
from edgeward.policy.context import ActionContext

Evaluator = Callable[[ActionContext], Any]

# The shapes a value compiles to: callables, and plain data the native
# phase runner reads to evaluate `set-vars` itself (native_phase).


@dataclass(frozen=True, slots=True)
class Constant:
    value: Any  # str, number, bool or None: never changed

    def __call__(self, ctx: ActionContext) -> Any:
        return self.value


@dataclass(frozen=True, slots=True)
class Expression:
    """Exactly one ``${expr}``: the expression's value, of its type."""

    program: native.Program

    def __call__(self, ctx: ActionContext) -> Any:
        return ctx.evaluate(self.program)


@dataclass(frozen=True, slots=True)
class Text:
    template: native.Template

    def __call__(self, ctx: ActionContext) -> Any:
        return ctx.render(self.template)


@dataclass(frozen=True, slots=True)
class ListValue:
    items: tuple[Evaluator, ...]

    def __call__(self, ctx: ActionContext) -> Any:
        return [item(ctx) for item in self.items]


@dataclass(frozen=True, slots=True)
class MapValue:
    fields: tuple[tuple[Any, Evaluator], ...]

    def __call__(self, ctx: ActionContext) -> Any:
        return {k: v(ctx) for k, v in self.fields}


def compile_value(config: ConfigReader, path: PathKey, raw: Any) -> Evaluator:
    if isinstance(raw, str):
        if "${" not in raw:
            return Constant(raw)
        whole = _whole_expression(raw, config, path)
        if whole is not None:
            return Expression(whole)
        return Text(config.compile_template(path, raw))
    if isinstance(raw, list):
        return ListValue(
            tuple(compile_value(config, (*path, i), item) for i, item in enumerate(raw))
        )
    if isinstance(raw, Mapping):
        return MapValue(tuple((k, compile_value(config, (*path, k), v)) for k, v in raw.items()))
    if raw is None or isinstance(raw, bool | int | float):
        return Constant(raw)
    raise InvalidConfig(f"unsupported value {raw!r}", config.locate(path))


def _whole_expression(text: str, config: ConfigReader, path: PathKey) -> native.Program | None:
    """The program of `text` when it is exactly ``${expr}``. When the inner
    text does not compile, `text` holds several interpolations (``${a}-${b}``
    has inner text ``a}-${b``) and is rendered as a template instead."""
    stripped = text.strip()
    if not (stripped.startswith("${") and stripped.endswith("}")):
        return None
    try:
        return config.compile_expression(path, stripped[2:-1])
    except InvalidConfig:
        return None
