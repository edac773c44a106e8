"""Small HTTP helpers shared by actions."""

from __future__ import annotations

from collections.abc import Iterable

from edgeward import errorbody
from edgeward.hooks import Header, LocalResponse
from edgeward.policy.actions.base import ActionContext, Decision
from edgeward.policy.errors import ErrorCode

# Headers a policy may not add or remove: they frame the message or belong
# to the connection, and changing them would desynchronise the proxy.
FRAMING_HEADERS = frozenset(
    {
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "proxy-connection",
    }
)


def error_response(
    ctx: ActionContext,
    status: int,
    code: ErrorCode,
    message: str,
    headers: Iterable[Header] = (),
) -> LocalResponse:
    """An answer in the edge's one error format (`edgeward.errorbody`:
    plain text, or JSON when the client prefers it) carrying `code` (also in
    `edgeward-error`), plus `headers` (a challenge, Retry-After)."""
    received = ctx.received
    accept = errorbody.accept_of(received.headers) if received is not None else None
    content_type, body = errorbody.render(status, code.value, message, ctx.request_id or "", accept)
    return LocalResponse(status, [(b"content-type", content_type), *headers], body, code.value)


def error_decision(
    ctx: ActionContext,
    status: int,
    code: ErrorCode,
    message: str,
    *,
    verdict: str = "deny",
    reason: str | None = None,
    headers: Iterable[Header] = (),
) -> Decision:
    """A failed check answered with `error_response`."""
    response = error_response(ctx, status, code, message, headers)
    return Decision(verdict, reason or message, response)


def set_header(headers: list[Header], name: bytes, value: bytes) -> None:
    """Replace every `name` header by one with `value`."""
    headers[:] = [h for h in headers if h[0].lower() != name]
    headers.append((name, value))
