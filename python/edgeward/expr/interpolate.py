"""``${...}`` templates (docs/cel.md §10): literal text with CEL expressions
rendered as text. ``$${`` writes a literal ``${``. URL-valued fields escape
what they interpolate with `escape_url_value`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from edgeward.expr.env import Env
from edgeward.expr.errors import PolicyExprError
from edgeward.expr.lexer import Lexer
from edgeward.expr.program import Program, compile_range
from edgeward.expr.values import kind, show, to_string

_DEFAULT_ENV = Env()


class Template:
    """A compiled template. Immutable; `render` may run concurrently."""

    __slots__ = ("_parts", "is_constant", "references", "secrets_read", "source")

    def __init__(self, source: str, parts: list[str | Program]) -> None:
        self.source = source
        self._parts = tuple(parts)
        self.is_constant = not any(isinstance(p, Program) for p in parts)
        self.references: frozenset[str] = frozenset().union(
            *(p.references for p in parts if isinstance(p, Program))
        )
        self.secrets_read: frozenset[tuple[str | None, str | None]] = frozenset().union(
            *(p.secrets_read for p in parts if isinstance(p, Program))
        )

    def render(self, activation: Mapping[str, Any]) -> str:
        """Each ``${expr}`` replaced by its value as text. Raises `EvalError`."""
        out = []
        for part in self._parts:
            out.append(part if isinstance(part, str) else render_value(part.run(activation)))
        return "".join(out)

    def __repr__(self) -> str:
        return f"Template({self.source!r})"


def render_value(value: Any) -> str:
    """The text of a value in a template: `string()` for scalars, empty for
    null, `format`'s ``%s`` for lists and maps."""
    k = kind(value)
    if k == "null":
        return ""
    if k in ("list", "map"):
        return show(value)
    return to_string(value)


def interpolate(template: str, *, env: Env | None = None) -> Template:
    """Compile the ``${...}`` expressions of `template`. Raises
    `PolicyExprError` located in `template`."""
    env = env or _DEFAULT_ENV
    parts: list[str | Program] = [
        part if isinstance(part, str) else compile_range(template, env, *part)
        for part in split_template(template)
    ]
    return Template(template, parts)


def split_template(template: str) -> list[str | tuple[int, int]]:
    """The literal text (``$${`` undone) and the ``(start, end)`` offsets of
    each ``${...}`` expression of `template`, in order. Raises
    `PolicyExprError` for an unterminated or empty ``${``."""
    if not isinstance(template, str):
        raise TypeError(f"template must be a str, not {type(template).__name__}")
    parts: list[str | tuple[int, int]] = []
    text: list[str] = []
    i = 0
    n = len(template)
    while i < n:
        if template.startswith("$${", i):
            text.append("${")
            i += 3
        elif template.startswith("${", i):
            end = _closing_brace(template, i + 2)
            if end is None:
                raise PolicyExprError("unterminated '${'", template, i)
            if Lexer(template, i + 2, end).next().kind == "eof":
                raise PolicyExprError("empty '${}'", template, i)
            if text:
                parts.append("".join(text))
                text = []
            parts.append((i + 2, end))
            i = end + 1
        else:
            text.append(template[i])
            i += 1
    if text:
        parts.append("".join(text))
    return parts


# What an interpolated value may keep in a URL (RFC 3986: unreserved and
# reserved characters, and `%` when it starts an escape); anything else is
# percent-encoded as UTF-8.
_URL_KEEP = "-._~:/?#[]@!$&'()*+,;=%"
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def escape_url_value(value: str) -> str:
    """An interpolated value made fit for a URL: characters a URL cannot
    hold are percent-encoded (``San Francisco`` -> ``San%20Francisco``,
    CR/LF -> ``%0D%0A``), delimiters and existing ``%XX`` escapes are kept,
    so escaping twice changes nothing (no double encoding) and a value may
    still be a whole path, query or URL (``${vars.backend_url}``). A value
    that must stay one query component is written ``${url.escape(x)}``."""
    if value.isascii() and value.isalnum():
        return value
    return _LONE_PERCENT.sub("%25", quote(value, safe=_URL_KEEP))


def _closing_brace(template: str, start: int) -> int | None:
    """Offset of the `}` closing a ``${`` whose expression starts at `start`,
    as the CEL lexer sees the text (strings and nested braces skipped)."""
    lexer = Lexer(template, start)
    depth = 0
    while True:
        token = lexer.next()
        if token.kind == "eof":
            return None
        if token.kind in ("(", "[", "{"):
            depth += 1
        elif token.kind in (")", "]"):
            depth -= 1
        elif token.kind == "}":
            if depth == 0:
                return token.pos
            depth -= 1
