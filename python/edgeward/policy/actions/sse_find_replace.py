"""`sse-find-replace`: in the `on_event_stream_message` phase, replace
every match of each `from` regex in one field of the message (`data`, the
data lines joined with LF, or each `retry` value) with `to`.

Each message is complete when the phase runs (`policy.sse` holds it until
its blank line), so matching is on the whole field. A changed message is
written back by `sse.Message.encode`: its data lines from the new data
(split at line breaks, so a `to` with "\\n" makes more data lines); a retry
value must stay on its line, so a CR or LF in a new one is an error.
"""

from __future__ import annotations

from typing import Self

from edgeward.policy.actions._find_replace import SSE_FIELDS, Results, Spec, read_specs, render
from edgeward.policy.actions.base import (
    Action,
    ActionContext,
    ActionError,
    CompileScope,
    ConfigReader,
    Decision,
    ErrorCode,
    Phase,
)


class SseFindReplace(Action):
    type = "sse-find-replace"
    phases = frozenset({Phase.EVENT_STREAM_MESSAGE})

    def __init__(self, specs: tuple[Spec, ...]) -> None:
        self.specs = specs

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        return cls(read_specs(config, sse=True))

    def apply(self, ctx: ActionContext) -> Decision | None:
        message = ctx.message
        assert message is not None
        results = Results()
        for index, spec in enumerate(self.specs):
            field = ctx.render(spec.field) if spec.field is not None else "data"
            if field not in SSE_FIELDS:
                raise ActionError(
                    ErrorCode.ACTION_FAILED,
                    f"sse-find-replace: field must be 'data' or 'retry', not {field!r}",
                )
            replacement = render(ctx, spec, self.type)
            on_match = results.matcher(index)
            if field == "data":
                new = replacement.replace_all(message.data, on_match)
                if new != message.data:
                    message.data, message.changed = new, True
                continue
            for i, value in enumerate(message.retry):
                new = replacement.replace_all(value, on_match)
                if b"\r" in new or b"\n" in new:
                    raise ActionError(
                        ErrorCode.ACTION_FAILED, "sse-find-replace: a new retry value has CR/LF"
                    )
                if new != value:
                    message.retry[i], message.changed = new, True
        ctx.record("sse_find_replace", {"replacements": results.items})
        return None
