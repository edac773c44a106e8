"""What the three find-replace actions share: the `replacements` config,
rendering it for one exchange, the body filter and the result variables.

The matching itself (streaming, bounded, Go's ReplaceAll semantics) is
`edgeward.policy.findreplace`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgeward import native
from edgeward.hooks import Header
from edgeward.policy.actions._body import content_encoding, encoded_here, pipeline, weaken_etag
from edgeward.policy.actions.base import ActionContext, ConfigReader
from edgeward.policy.config import constant
from edgeward.policy.errors import ActionError, ErrorCode
from edgeward.policy.findreplace import (
    WINDOW,
    Replacement,
    StreamReplacer,
    compile_bytes,
    prefix_pattern,
)
from edgeward.policy.regex import RegexError

SSE_FIELDS = ("data", "retry")


@dataclass(frozen=True, slots=True)
class Spec:
    """One item of `replacements`, compiled."""

    pattern: native.Template  # `from` (CEL)
    template: native.Template | None  # `to` (CEL); None: the match is deleted
    field: native.Template | None  # `field` (sse-find-replace only, CEL)
    static: Replacement | None  # when `from` and `to` have no ${}: built at load


def read_specs(config: ConfigReader, *, sse: bool = False) -> tuple[Spec, ...]:
    items = config.items("replacements", required=True, min_items=1)
    assert items is not None
    specs = []
    for path, raw in items:
        item = config.reader_at(path, raw)
        pattern = item.template("from", required=True)
        assert pattern is not None
        template = item.template("to")
        field = item.template("field") if sse else None
        if field is not None and field.is_constant and constant(field) not in SSE_FIELDS:
            item.fail("field", f"field must be 'data' or 'retry', not {constant(field)!r}")
        static = None
        if pattern.is_constant:
            source = constant(pattern)
            try:
                compile_bytes(source)
            except RegexError as exc:
                item.fail("from", f"invalid regular expression: {exc}")
            if prefix_pattern(source) is None:
                item.warn(
                    "from",
                    f"edgeward cannot tell where a match of this pattern may begin: every"
                    f" {WINDOW // 1024} KiB of the body is held back before it is sent",
                )
            if template is None or template.is_constant:
                to = constant(template) if template is not None else ""
                static = Replacement.compile(source, to)
        specs.append(Spec(pattern, template, field, static))
    return tuple(specs)


def render(ctx: ActionContext, spec: Spec, action: str) -> Replacement:
    """The replacement for this exchange. Raises `native.EvalError` (a
    failed ${}) or `ActionError` (an interpolated regex that is not one)."""
    if spec.static is not None:
        return spec.static
    template = ctx.render(spec.template) if spec.template is not None else ""
    source = constant(spec.pattern) if spec.pattern.is_constant else ctx.render(spec.pattern)
    try:
        return Replacement.compile(source, template)
    except RegexError as exc:
        raise ActionError(
            ErrorCode.INVALID_REGEX, f"{action}: interpolated 'from' is not a valid regex: {exc}"
        ) from None


class Results:
    """`replacements[i].{replacement_index, matched_content}`: one entry per
    replacement that matched, with its first match, in the order found."""

    __slots__ = ("items", "seen")

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.seen: set[int] = set()

    def matcher(self, index: int) -> Callable[[bytes], None]:
        def on_match(text: bytes) -> None:
            if index not in self.seen:
                self.seen.add(index)
                self.items.append(
                    {
                        "replacement_index": index,
                        "matched_content": text.decode("utf-8", "replace"),
                    }
                )

        return on_match


class ReplaceFilter:
    """A `BodyFilter`: each replacement in order, each on the output of the
    one before (the docs' "later rules operate on the result of earlier
    rules"), all streaming."""

    __slots__ = ("_steps",)

    def __init__(self, replacements: list[Replacement], results: Results) -> None:
        self._steps = [StreamReplacer(r, results.matcher(i)) for i, r in enumerate(replacements)]

    def feed(self, data: bytes) -> bytes:
        for step in self._steps:
            if not data:
                return b""
            data = step.feed(data)
        return data

    def finish(self) -> bytes:
        tail = b""
        for step in self._steps:
            tail = step.feed(tail, final=True)
        return tail


def filter_body(
    ctx: ActionContext, specs: tuple[Spec, ...], action: str, headers: list[Header]
) -> bool:
    """Add the body filter for `specs` to the phase; False (with an event
    and `error` in the results) when the body is encoded by the sender."""
    key = action.replace("-", "_")
    coding = content_encoding(headers)
    if coding and not encoded_here(ctx):
        message = f"the body is {coding}-encoded: {action} left it unchanged"
        ctx.emit(action, "skip", message, error_code=ErrorCode.BODY_NOT_MODIFIED.value)
        error = {"code": ErrorCode.BODY_NOT_MODIFIED.value, "message": message}
        ctx.record(key, {"replacements": [], "error": error})
        return False
    results = Results()
    replacements = [render(ctx, spec, action) for spec in specs]
    pipeline(ctx).text.append(ReplaceFilter(replacements, results))
    headers[:] = [weaken_etag(h) for h in headers if h[0] != b"content-length"]
    ctx.record(key, {"replacements": results.items})
    return True
