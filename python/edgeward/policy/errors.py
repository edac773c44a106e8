"""Errors of the policy layer.

Load-time problems are `Diagnostic`s (an error or a warning at a location in
the document, with the rule and action it concerns); a document with at least
one error raises `PolicyError` carrying all of them. Run-time failures of an
action are `ActionError`s carrying the stable error code the client sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from edgeward.errors import ConfigError, EdgewardError, Location


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found while loading a policy."""

    severity: Severity
    message: str
    location: Location
    rule: str | None = None  # "on_http_request[2] 'block admin'"
    action: str | None = None  # "actions[0] deny"

    def __str__(self) -> str:
        where = " ".join(part for part in (self.rule, self.action) if part)
        context = f" ({where})" if where else ""
        return f"{self.location}: {self.severity}: {self.message}{context}"


class PolicyError(ConfigError):
    """A policy document that cannot be loaded. `diagnostics` lists every
    error (and warning) found, each located in the document."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        errors = [d for d in self.diagnostics if d.severity is Severity.ERROR]
        first = errors[0] if errors else self.diagnostics[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{first.message}{more}", first.location)
        self.args = ("\n".join(str(d) for d in errors) or str(first),)

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity is Severity.ERROR)


class ErrorCode(StrEnum):
    """Stable codes of the answers the policy engine makes, sent as the
    `edgeward-error` header. The numbers are those of the public gateway's
    error with the same meaning, so its documentation applies."""

    EXPRESSION_FAILED = "ERR_EDGEWARD_2254"  # a rule's CEL expression failed at run time
    INTERPOLATION_FAILED = "ERR_EDGEWARD_3900"  # a ${...} in an action's config failed
    INVALID_REGEX = "ERR_EDGEWARD_3901"  # an interpolated regex did not compile
    BODY_NOT_MODIFIED = "ERR_EDGEWARD_3904"  # find-replace: a body it cannot read (encoded)
    ACTION_FAILED = "ERR_EDGEWARD_2253"  # an action could not run (bad header value...)
    CIRCUIT_OPEN = "ERR_EDGEWARD_3202"  # circuit-breaker: the circuit is open
    IP_DENIED = "ERR_EDGEWARD_3203"  # restrict-ips
    WEBHOOK_FAILED = "ERR_EDGEWARD_3204"  # verify-webhook
    BODY_TOO_LARGE = "ERR_EDGEWARD_3905"  # a body the policy must read is over the cap
    # basic-auth, jwt-validation, rate-limit (policy-auth)
    UNAUTHORIZED = "ERR_EDGEWARD_3401"  # missing or wrong credentials, invalid token
    TOKEN_MISSING = "ERR_EDGEWARD_3406"  # a configured JWT is not in the request
    BODY_NOT_JSON = "ERR_EDGEWARD_3411"  # a JWT in a body that is not a JSON object
    BODY_NOT_FORM = "ERR_EDGEWARD_3412"  # a JWT in a form body that does not parse
    BODY_TYPE_UNSUPPORTED = "ERR_EDGEWARD_3414"  # a JWT in a body that is neither
    BODY_METHOD_UNSUPPORTED = "ERR_EDGEWARD_3415"  # a JWT in the body of a GET...
    TOKEN_PREFIX_MISSING = "ERR_EDGEWARD_3413"  # the header lacks the configured prefix
    TOKEN_MALFORMED = "ERR_EDGEWARD_3416"  # not a compact JWS
    JWKS_UNAVAILABLE = "ERR_EDGEWARD_3422"  # no usable keys could be fetched
    RATE_LIMITED = "ERR_EDGEWARD_3429"  # edgeward's own number: no public code exists
    # http-request (its `on_error` decides whether they fail the request)
    FETCH_TOO_LARGE = "ERR_EDGEWARD_3601"  # the response body is over 256 KiB
    FETCH_TIMEOUT = "ERR_EDGEWARD_3602"  # `timeout` passed before an answer
    FETCH_LOOP = "ERR_EDGEWARD_3603"  # too many hops, or an internal endpoint loop
    FETCH_FAILED = "ERR_EDGEWARD_3605"  # DNS, connection, TLS or HTTP failure
    FETCH_REFUSED = "ERR_EDGEWARD_3606"  # the target is not allowed by the edge config
    FETCH_INTERNAL = "ERR_EDGEWARD_3607"  # no such internal (.internal) endpoint is online
    # terminate-tls (the connection is closed; the code is in its results and events)
    TLS_FAILED = "ERR_EDGEWARD_3220"  # no handshake, or not one the action's settings allow
    # owasp-crs-request / owasp-crs-response
    WAF_REQUEST_BLOCKED = "ERR_EDGEWARD_3700"  # the request was blocked by the WAF
    WAF_FAILED = "ERR_EDGEWARD_3701"  # the WAF could not inspect (engine error, unreadable body)
    WAF_RESPONSE_BLOCKED = "ERR_EDGEWARD_3702"  # the response was blocked by the WAF


class ActionError(EdgewardError):
    """An action could not complete for this request. The engine answers 500
    with `code` (fails closed) unless the rule says `on_error: continue`.
    `message` goes to the event log: it must not contain a secret."""

    def __init__(self, code: ErrorCode, message: str, *, status: int = 500) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
