"""`url-rewrite`: change the URL the upstream receives (path, query, host)
without the client seeing it, by a `from` regex and a `to` replacement
applied to the full URL."""

from __future__ import annotations

from typing import Self
from urllib.parse import urlsplit

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


class UrlRewrite(Action):
    type = "url-rewrite"
    phases = frozenset({Phase.HTTP_REQUEST})

    def __init__(self, rewrite: Rewrite) -> None:
        self.rewrite = rewrite

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        return cls(Rewrite.read(config))

    def apply(self, ctx: ActionContext) -> Decision | None:
        head = ctx.request
        assert head is not None
        url = full_url(head)  # after earlier rewrites in this phase
        new, matches = self.rewrite.apply(ctx, url, self.type)
        ctx.record("url_rewrite", {"matches": matches, "url": new})
        if not matches or new == url:
            return None
        head.target, head.authority = forwarded(new)
        return None


def forwarded(url: str) -> tuple[bytes, bytes]:
    """The target and authority of the request forwarded to `url`, which
    must be an absolute http(s) URL fit for a request line; also how the
    native phase runner's url-rewrite checks and splits it. Raises
    `ActionError`."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ActionError(
            ErrorCode.ACTION_FAILED,
            f"url-rewrite produced {url!r}, not an absolute http(s) URL",
        )
    if any(c in url for c in "\r\n\0 "):
        raise ActionError(
            ErrorCode.ACTION_FAILED, "url-rewrite produced a URL with CR/LF/NUL/space"
        )
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return target.encode("utf-8"), parts.netloc.encode("utf-8")
