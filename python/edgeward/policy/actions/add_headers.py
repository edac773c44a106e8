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
        # Literal values (the usual case) are encoded once, not per request.
        self.headers: tuple[tuple[str, bytes, bytes | native.Template], ...] = tuple(
            (name, name.encode("latin-1"), constant(value).encode() if value.is_constant else value)
            for name, value in headers.items()
        )
        constants = [(raw, value) for _, raw, value in self.headers if isinstance(value, bytes)]
        self.constant = tuple(constants) if len(constants) == len(headers) else None
        self.constant_results = _results(constants)
        self.sets_host = "host" in headers

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
        added: Sequence[Header] | None = self.constant
        if added is None:
            added = [
                (raw, value if isinstance(value, bytes) else ctx.render_header_value(value, name))
                for name, raw, value in self.headers
            ]
        request = ctx.request  # set in the request phase only
        if request is None:
            assert ctx.response is not None
            ctx.response.headers.extend(added)
        elif self.sets_host:
            target = request.headers
            for name, value in added:
                if name == b"host":
                    request.authority = value
                    target[:] = [h for h in target if h[0].lower() != b"host"]
                else:
                    target.append((name, value))
        else:
            request.headers.extend(added)
        if ctx.records:
            ctx.record("add_headers", self.constant_results if self.constant else _results(added))
        return None


def _results(added: Sequence[Header]) -> dict[str, Any]:
    return {"headers_added": {n.decode("latin-1"): v.decode("utf-8", "replace") for n, v in added}}
