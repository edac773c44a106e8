"""Config values of any shape whose strings are interpolated (`set-vars`
values, `log` metadata).

A string that is exactly one ``${expr}`` keeps the expression's type (a
number stays a number); any other string with ``${...}`` is rendered as
text; lists and mappings are walked; everything else is a constant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from edgeward import native
from edgeward.document import PathKey
from edgeward.policy.config import ConfigReader, InvalidConfig
from edgeward.policy.context import ActionContext

Evaluator = Callable[[ActionContext], Any]


def compile_value(config: ConfigReader, path: PathKey, raw: Any) -> Evaluator:
    if isinstance(raw, str):
        if "${" not in raw:
            return lambda ctx: raw
        whole = _whole_expression(raw, config, path)
        if whole is not None:
            return lambda ctx: ctx.evaluate(whole)
        template = config.compile_template(path, raw)
        return lambda ctx: ctx.render(template)
    if isinstance(raw, list):
        items = [compile_value(config, (*path, i), item) for i, item in enumerate(raw)]
        return lambda ctx: [item(ctx) for item in items]
    if isinstance(raw, Mapping):
        fields = {k: compile_value(config, (*path, k), v) for k, v in raw.items()}
        return lambda ctx: {k: v(ctx) for k, v in fields.items()}
    if raw is None or isinstance(raw, bool | int | float):
        return lambda ctx: raw
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
