"""`request-body-find-replace`: replace every match of each `from` regex in
the request body with `to`, as the body streams to the upstream.

The body is not buffered: it goes through the replacements chunk by chunk
(`policy.findreplace`) and reaches the upstream chunked, without
`Content-Length` (a body an earlier action buffered, e.g. for
verify-webhook, is forwarded with its new length). `replacements` in the
results fill as the body streams: rules later in this phase see them empty.
"""

from __future__ import annotations

from typing import Self

from edgeward.policy.actions._find_replace import Spec, filter_body, read_specs
from edgeward.policy.actions.base import (
    Action,
    ActionContext,
    CompileScope,
    ConfigReader,
    Decision,
    Phase,
)


class RequestBodyFindReplace(Action):
    type = "request-body-find-replace"
    phases = frozenset({Phase.HTTP_REQUEST})

    def __init__(self, specs: tuple[Spec, ...]) -> None:
        self.specs = specs

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        return cls(read_specs(config))

    def apply(self, ctx: ActionContext) -> Decision | None:
        request = ctx.request
        assert request is not None
        filter_body(ctx, self.specs, self.type, request.headers)
        return None
