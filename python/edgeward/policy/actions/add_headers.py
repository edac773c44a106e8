"""`add-headers`: add headers (values interpolated) to the request before it
is forwarded or to the response before the client gets it. Values are
appended to existing ones, except `host`, which replaces the authority."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

from edgeward import native
from edgeward.hooks import Header
from edgeward.policy.actions._http import FRAMING_HEADERS
from edgeward.policy.actions.base import (
    Action,
    ActionContext,
    CompileScope,
    ConfigReader,
    Decision,
    Phase,
)
from edgeward.policy.config import constant


class AddHeaders(Action):
    type = "add-headers"
    phases = frozenset({Phase.HTTP_REQUEST, Phase.HTTP_RESPONSE})

    def __init__(self, headers: dict[str, native.Template]) -> None:
        self.headers = tuple(
            (name, name.encode("latin-1"), value) for name, value in headers.items()
        )
        # Literal values (the usual case) are encoded once, not per request.
        self.constant: tuple[Header, ...] | None = None
        self.constant_results: dict[str, Any] | None = None
        if all(value.is_constant for _, _, value in self.headers):
            self.constant = tuple(
                (raw, constant(value).encode("utf-8")) for _, raw, value in self.headers
            )
            self.constant_results = _results(self.constant)

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        headers = config.template_map(
            "headers", required=True, min_items=1, max_items=10, header_names=True
        )
        assert headers is not None
        for name in headers:
            if name in FRAMING_HEADERS:
                config.fail(
                    "headers", f"header {name!r} frames the message; a policy cannot add it"
                )
            if name == "host" and scope.phase is not Phase.HTTP_REQUEST:
                config.fail("headers", "'host' can only be set on the request")
        return cls(headers)

    def apply(self, ctx: ActionContext) -> Decision | None:
        added: Sequence[Header]
        if self.constant is not None:
            added = self.constant
        else:
            added = [
                (raw, ctx.render_header_value(value, name)) for name, raw, value in self.headers
            ]
        if ctx.request is not None and ctx.phase is Phase.HTTP_REQUEST:
            target = ctx.request.headers
            for name, value in added:
                if name == b"host":
                    ctx.request.authority = value
                    target[:] = [h for h in target if h[0].lower() != b"host"]
                else:
                    target.append((name, value))
        elif ctx.response is not None:
            ctx.response.headers.extend(added)
        ctx.record("add_headers", self.constant_results or _results(added))
        return None


def _results(added: Sequence[Header]) -> dict[str, Any]:
    return {"headers_added": {n.decode("latin-1"): v.decode("utf-8", "replace") for n, v in added}}
