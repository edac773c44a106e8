"""The URL rewriting shared by `redirect` and `url-rewrite`: interpolate
`from` and `to`, then replace every match of `from` in the full URL with
`to` (Go `ReplaceAllString` semantics); without `from`, `to` is the URL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgeward import native
from edgeward.policy.actions.base import ActionContext, ConfigReader
from edgeward.policy.config import constant
from edgeward.policy.errors import ActionError, ErrorCode
from edgeward.policy.expressions import Renderable
from edgeward.policy.regex import RegexError, compile_pattern, replace_all


@dataclass(frozen=True, slots=True)
class Rewrite:
    pattern: native.Template | None
    replacement: Renderable  # a URL field: interpolated values are percent-encoded
    static_pattern: Any  # compiled at load when `from` has no ${}

    @classmethod
    def read(cls, config: ConfigReader) -> Rewrite:
        pattern = config.template("from")
        replacement = config.url_template("to", required=True)
        assert replacement is not None
        static = None
        if pattern is not None and pattern.is_constant:
            try:
                static = compile_pattern(constant(pattern))
            except RegexError as exc:
                config.fail("from", f"invalid regular expression: {exc}")
        return cls(pattern, replacement, static)

    def apply(self, ctx: ActionContext, url: str, action: str) -> tuple[str, list[str]]:
        """The new URL and the first match's groups ([] when nothing
        matched; the URL is then unchanged)."""
        to = ctx.render(self.replacement)
        if self.pattern is None:
            return to, [url]
        regex = self.static_pattern
        if regex is None:
            source = ctx.render(self.pattern)
            try:
                regex = compile_pattern(source)
            except RegexError as exc:
                raise ActionError(
                    ErrorCode.INVALID_REGEX,
                    f"{action}: interpolated 'from' is not a valid regex: {exc}",
                ) from None
        return replace_all(regex, url, to)
