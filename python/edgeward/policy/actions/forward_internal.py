"""`forward-internal`: hand the request to an internal endpoint (a host
ending in `.internal`, static in edge.yml or bound by an agent) instead of
this endpoint's upstream (traffic-policy-reference.md §3.16).

The action only decides. It renders `url`, asks the driver whether that
endpoint can take the exchange (`FindInternal`: it exists and is online, the
hop limit, no loop), and ends the phase with a `ForwardInternal` outcome;
the proxy routes the request there, runs the target's policy and forwards
to the target's upstream. The Host header stays the public host.

When the target cannot take it, `on_error: halt` (the default) answers with
the driver's error (404 ERR_EDGEWARD_3200 offline or unknown, 508
ERR_EDGEWARD_3502 hop limit or loop); `on_error: continue` records
`actions.ngrok.forward_internal.{url, error.code, error.message}` and the
policy goes on with the next action or rule.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import Self
from urllib.parse import urlsplit

from edgeward import native
from edgeward.hooks import Effect, EffectResult, FindInternal, ForwardInternal, InternalError
from edgeward.policy.actions.base import (
    Action,
    ActionContext,
    CompileScope,
    ConfigReader,
    Decision,
    ErrorCode,
    Phase,
)
from edgeward.policy.config import constant

_HOST = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+internal$")


class ForwardInternalAction(Action):
    type = "forward-internal"
    phases = frozenset({Phase.HTTP_REQUEST})
    terminating = True

    def __init__(self, url: native.Template, halt: bool) -> None:
        self.url = url
        self.halt = halt

    def always_ends_phase(self) -> bool:
        return self.halt  # with on_error: continue, a failure goes on to the next action

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        url = config.template("url", required=True)
        assert url is not None
        if url.is_constant:
            problem = url_problem(constant(url))
            if problem is not None:
                config.fail("url", problem)
        on_error = config.string("on_error", default="halt")
        if on_error not in ("halt", "continue"):
            config.fail("on_error", f"on_error must be 'halt' or 'continue', not {on_error!r}")
        binding = config.string("binding", default="internal")
        if binding != "internal":  # older docs spell the target's binding out
            config.fail("binding", f"the target's binding is 'internal', not {binding!r}")
        for key in ("endpoint_selectors", "endpoint_weights"):
            if config.has(key):
                config.fail(key, f"{key} is not supported by edgeward (pools pick at random)")
        return cls(url, on_error == "halt")

    def run(self, ctx: ActionContext) -> Generator[Effect, EffectResult, Decision | None]:
        url = ctx.render(self.url)
        problem = url_problem(url)
        error: InternalError | None
        if problem is not None:
            error = InternalError(500, ErrorCode.ACTION_FAILED.value, f"url {url!r}: {problem}")
        else:
            answer = yield FindInternal(url)
            error = answer if isinstance(answer, InternalError) else None
        if error is None:
            assert ctx.request is not None
            forward = ForwardInternal(url, ctx.request, ctx.state.body, ctx.body_filter)
            return Decision("forward", f"forward to {url}", forward=forward)
        if self.halt:
            return Decision.respond(
                error.status,
                headers=[(b"content-type", b"text/plain; charset=utf-8")],
                body=f"{error.status} {error.message}\n".encode(),
                error_code=error.code,
                verdict="error",
                reason=error.message,
            )
        ctx.record(
            "forward_internal",
            {"url": url, "error": {"code": error.code, "message": error.message}},
        )
        ctx.emit(self.type, "continue", error.message, error_code=error.code)
        return None


def url_problem(url: str) -> str | None:
    """Why `url` cannot name an internal HTTP endpoint, or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return "must be an http:// or https:// URL (tcp and tls are not supported)"
    host = (parts.hostname or "").rstrip(".")
    if not host.endswith(".internal") or not _HOST.match(host):
        return "must name an internal endpoint: a hostname ending in '.internal'"
    if parts.username is not None or parts.password is not None:
        return "must not carry a user name or password"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return "must be scheme://host[:port] (the request keeps its own path)"
    if port is not None and not 0 < port < 65536:
        return f"bad port {port}"
    return None
