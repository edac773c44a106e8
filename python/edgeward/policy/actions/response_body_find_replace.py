"""`response-body-find-replace`: replace every match of each `from` regex
in the response body with `to`, as the body streams to the client.

Streaming, not buffered (`policy.findreplace`): `Content-Length` is dropped
and the proxy frames the new body; a strong `ETag` is made weak. Left
alone: responses without a body (HEAD, 1xx, 204, 304) and partial ones
(206 / `Content-Range`: the range's offsets would no longer hold). A body
the upstream compressed is not decoded: the action is skipped with an
event (docs/policy.md says how to get an identity body); one this phase's
compress-response compresses is replaced before it is compressed.
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


class ResponseBodyFindReplace(Action):
    type = "response-body-find-replace"
    phases = frozenset({Phase.HTTP_RESPONSE})

    def __init__(self, specs: tuple[Spec, ...]) -> None:
        self.specs = specs

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        return cls(read_specs(config))

    def apply(self, ctx: ActionContext) -> Decision | None:
        response, received = ctx.response, ctx.received
        assert response is not None
        if (
            response.status < 200
            or response.status in (204, 206, 304)
            or (received is not None and received.method == b"HEAD")
            or any(name == b"content-range" for name, _ in response.headers)
        ):
            ctx.record("response_body_find_replace", {"replacements": []})
            return None
        filter_body(ctx, self.specs, self.type, response.headers)
        return None
