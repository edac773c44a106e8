"""`custom-response`: answer from the edge with a status, headers and a body
(headers and body interpolated). In `on_http_request` the upstream is never
reached; in `on_http_response` it replaces the upstream's answer."""

from __future__ import annotations

import json
from typing import Self

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

_NO_BODY = frozenset({204, 304})


class CustomResponse(Action):
    type = "custom-response"
    phases = frozenset({Phase.HTTP_REQUEST, Phase.HTTP_RESPONSE})
    terminating = True

    def __init__(
        self, status: int, headers: dict[str, native.Template], body: native.Template | None
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        status = config.integer("status_code", default=200, minimum=200, maximum=599)
        assert status is not None
        headers = config.template_map("headers", max_items=10, header_names=True) or {}
        for name in headers:
            if name in FRAMING_HEADERS:
                config.fail("headers", f"header {name!r} is set by the edge, not by a policy")
        body = config.template("body")
        if body is not None and (not body.is_constant or constant(body)) and status in _NO_BODY:
            config.fail("body", f"HTTP status {status} does not allow a response body")
        return cls(status, headers, body)

    def apply(self, ctx: ActionContext) -> Decision:
        body = ctx.render(self.body) if self.body is not None else ""
        headers: list[Header] = [
            (name.encode("latin-1"), ctx.render_header_value(value, name))
            for name, value in self.headers.items()
        ]
        return self.respond(body, headers)

    def respond(self, text: str, headers: list[Header]) -> Decision:
        """The answer, from the rendered body and header values (also what
        the native phase runner renders: native_phase.native_decision)."""
        body = text.encode("utf-8")
        if body and "content-type" not in self.headers:
            headers.append((b"content-type", _infer_content_type(body)))
        return Decision.respond(
            self.status, headers=headers, body=body, verdict="respond", reason="custom response"
        )


def _infer_content_type(body: bytes) -> bytes:
    """The public gateway infers a type when none is given; ours is small and
    conservative: JSON, HTML, else plain text."""
    head = body.lstrip()[:1]
    if head in (b"{", b"["):
        try:
            json.loads(body)
        except ValueError:
            pass
        else:
            return b"application/json"
    if head == b"<":
        return b"text/html; charset=utf-8"
    return b"text/plain; charset=utf-8"
