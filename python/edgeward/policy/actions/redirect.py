"""`redirect`: answer with a 3xx and a `Location` built from the request URL
(`from` regex, `to` with `$1` groups and `${...}` interpolation). When the
URL does not match, or would not change, nothing happens."""

from __future__ import annotations

from typing import Self

from edgeward import native
from edgeward.hooks import Header
from edgeward.policy.actions._http import FRAMING_HEADERS
from edgeward.policy.actions._rewrite import Rewrite
from edgeward.policy.actions.base import (
    Action,
    ActionContext,
    CompileScope,
    ConfigReader,
    Decision,
    Phase,
)
from edgeward.policy.errors import ActionError, ErrorCode
from edgeward.policy.variables import full_url


class Redirect(Action):
    type = "redirect"
    phases = frozenset({Phase.HTTP_REQUEST})

    def __init__(self, rewrite: Rewrite, status: int, headers: dict[str, native.Template]) -> None:
        self.rewrite = rewrite
        self.status = status
        self.headers = headers

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        rewrite = Rewrite.read(config)
        status = config.integer("status_code", default=302, minimum=300, maximum=399)
        assert status is not None
        headers = config.template_map("headers", max_items=10, header_names=True) or {}
        for name in headers:
            if name in FRAMING_HEADERS or name == "location":
                config.fail("headers", f"header {name!r} cannot be set on a redirect")
        return cls(rewrite, status, headers)

    def apply(self, ctx: ActionContext) -> Decision | None:
        assert ctx.received is not None
        url = full_url(ctx.received)
        location, matches = self.rewrite.apply(ctx, url, self.type)
        ctx.record("redirect", {"matches": matches, "url": location})
        if not matches or location == url:
            return None
        if any(c in location for c in "\r\n\0"):
            raise ActionError(ErrorCode.ACTION_FAILED, "redirect: Location contains CR/LF/NUL")
        headers = [
            (name.encode("latin-1"), ctx.render_header_value(value, name))
            for name, value in self.headers.items()
        ]
        return self.respond(location, headers)

    def respond(self, location: str, headers: list[Header]) -> Decision:
        """The answer to a request redirected to `location` (allowed in a
        header), with the `headers` rendered; also what the native phase
        runner's redirect is answered with."""
        return Decision.respond(
            self.status,
            headers=[(b"location", location.encode("utf-8")), *headers],
            verdict="redirect",
            reason=f"redirect to {location}",
        )
