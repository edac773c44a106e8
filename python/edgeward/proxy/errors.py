"""The answers the edge makes itself when it cannot proxy, each with a
stable `edgeward-error` code for support (modelled on the public gateway's
`ERR_NGROK_3xxx` codes; numbers reused where the meaning is the same).

The table is the documentation: docs/proxy.md lists it, and a test checks
that every code is there.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgeward import errorbody
from edgeward.hooks import LocalResponse


@dataclass(frozen=True, slots=True)
class EdgeError:
    code: str
    status: int
    message: str  # generic and public: details go to the operator log, never here

    def response(self, request_id: str = "", accept: bytes | None = None) -> LocalResponse:
        """The answer, in the one error format (`edgeward.errorbody`): plain
        text, or JSON when `accept` prefers it."""
        content_type, body = errorbody.render(
            self.status, self.code, self.message, request_id, accept
        )
        return LocalResponse(self.status, [(b"content-type", content_type)], body, self.code)


accept_of = errorbody.accept_of


ENDPOINT_NOT_FOUND = EdgeError("ERR_EDGEWARD_3200", 404, "no endpoint is configured for this host")
UPSTREAM_BAD_RESPONSE = EdgeError(
    "ERR_EDGEWARD_3004", 502, "the upstream sent an invalid or incomplete response"
)
UPSTREAM_CONNECT_TIMEOUT = EdgeError(
    "ERR_EDGEWARD_3005", 504, "the upstream could not be reached in time"
)
UPSTREAM_REFUSED = EdgeError("ERR_EDGEWARD_3006", 502, "the upstream refused the connection")
UPSTREAM_RESET = EdgeError(
    "ERR_EDGEWARD_3007", 502, "the upstream closed the connection before responding"
)
UPSTREAM_TIMEOUT = EdgeError("ERR_EDGEWARD_3008", 504, "the upstream did not respond in time")
UPSTREAM_TLS = EdgeError("ERR_EDGEWARD_3009", 502, "the TLS handshake with the upstream failed")
BAD_REQUEST = EdgeError("ERR_EDGEWARD_3400", 400, "the request is malformed")
REQUEST_TIMEOUT = EdgeError("ERR_EDGEWARD_3408", 408, "the request head did not arrive in time")
BODY_TOO_LARGE = EdgeError("ERR_EDGEWARD_3413", 413, "the request body is too large")
URI_TOO_LONG = EdgeError("ERR_EDGEWARD_3414", 414, "the request target is too long")
HEADERS_TOO_LARGE = EdgeError("ERR_EDGEWARD_3431", 431, "the request headers are too large")
NOT_IMPLEMENTED = EdgeError("ERR_EDGEWARD_3501", 501, "the request uses an unsupported feature")
VERSION_NOT_SUPPORTED = EdgeError("ERR_EDGEWARD_3505", 505, "the HTTP version is not supported")
CONNECT_NOT_ALLOWED = EdgeError(
    "ERR_EDGEWARD_3405", 405, "CONNECT is not allowed: the edge is not a forward proxy"
)
ENCODED_SLASH = EdgeError(
    "ERR_EDGEWARD_3440",
    400,
    "the request path contains an encoded slash or backslash (%2F, %5C) or a backslash",
)
BAD_PATH = EdgeError(
    "ERR_EDGEWARD_3441", 400, "the request path is malformed (not /..., or a bad %-escape)"
)
POLICY_FAILED = EdgeError("ERR_EDGEWARD_3500", 500, "the traffic policy failed")
AGENT_OFFLINE = EdgeError(
    "ERR_EDGEWARD_3209", 503, "the agent serving this endpoint is offline (it may be reconnecting)"
)
AGENT_UNREACHABLE = EdgeError(
    "ERR_EDGEWARD_3210", 502, "the edge could not forward the request to the endpoint's agent"
)
FORWARD_LOOP = EdgeError(
    "ERR_EDGEWARD_3502", 508, "forward-internal looped or passed through too many endpoints"
)

ALL = (
    ENDPOINT_NOT_FOUND,
    UPSTREAM_BAD_RESPONSE,
    UPSTREAM_CONNECT_TIMEOUT,
    UPSTREAM_REFUSED,
    UPSTREAM_RESET,
    UPSTREAM_TIMEOUT,
    UPSTREAM_TLS,
    BAD_REQUEST,
    REQUEST_TIMEOUT,
    BODY_TOO_LARGE,
    URI_TOO_LONG,
    HEADERS_TOO_LARGE,
    NOT_IMPLEMENTED,
    VERSION_NOT_SUPPORTED,
    CONNECT_NOT_ALLOWED,
    ENCODED_SLASH,
    BAD_PATH,
    POLICY_FAILED,
    AGENT_OFFLINE,
    AGENT_UNREACHABLE,
    FORWARD_LOOP,
)

BY_PROTOCOL_STATUS = {
    400: BAD_REQUEST,
    413: BODY_TOO_LARGE,
    414: URI_TOO_LONG,
    431: HEADERS_TOO_LARGE,
    501: NOT_IMPLEMENTED,
    505: VERSION_NOT_SUPPORTED,
}


class UpstreamFailure(Exception):
    """Proxying failed on the upstream side; carries the answer to give and
    the detail for the operator log (never for the client)."""

    def __init__(self, error: EdgeError, detail: str = "") -> None:
        super().__init__(f"{error.code}: {detail}" if detail else error.code)
        self.error = error
        self.detail = detail
