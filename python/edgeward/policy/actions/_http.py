"""Small HTTP helpers shared by actions."""

from __future__ import annotations

from collections.abc import Iterable

from edgeward.hooks import Header
from edgeward.policy.actions.base import Decision
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


def error_decision(
    status: int,
    code: ErrorCode,
    message: str,
    *,
    verdict: str = "deny",
    reason: str | None = None,
    headers: Iterable[Header] = (),
) -> Decision:
    """A short plain-text answer carrying `code` (also in `edgeward-error`),
    plus `headers` (a challenge, Retry-After)."""
    body = f"{status} {message}\n{code.value}\n".encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), *headers]
    return Decision.respond(
        status,
        headers=headers,
        body=body,
        error_code=code.value,
        verdict=verdict,
        reason=reason or message,
    )


def set_header(headers: list[Header], name: bytes, value: bytes) -> None:
    """Replace every `name` header by one with `value`."""
    headers[:] = [h for h in headers if h[0].lower() != name]
    headers.append((name, value))
