"""The action types edgeward implements, one module each.

To add one: write `actions/<name>.py` with an `Action` subclass and list it
in `_IMPLEMENTED`.
"""

from __future__ import annotations

from edgeward.policy.actions.add_headers import AddHeaders
from edgeward.policy.actions.base import Action
from edgeward.policy.actions.basic_auth import BasicAuth
from edgeward.policy.actions.circuit_breaker import CircuitBreaker
from edgeward.policy.actions.close_connection import CloseConnection
from edgeward.policy.actions.compress_response import CompressResponse
from edgeward.policy.actions.custom_response import CustomResponse
from edgeward.policy.actions.deny import Deny
from edgeward.policy.actions.forward_internal import ForwardInternalAction
from edgeward.policy.actions.http_request import HttpRequest
from edgeward.policy.actions.jwt_validation import JwtValidation
from edgeward.policy.actions.log import Log
from edgeward.policy.actions.oauth import OAuth
from edgeward.policy.actions.openid_connect import OpenIdConnect
from edgeward.policy.actions.owasp_crs import OwaspCrsRequest, OwaspCrsResponse
from edgeward.policy.actions.rate_limit import RateLimit
from edgeward.policy.actions.redirect import Redirect
from edgeward.policy.actions.remove_headers import RemoveHeaders
from edgeward.policy.actions.request_body_find_replace import RequestBodyFindReplace
from edgeward.policy.actions.response_body_find_replace import ResponseBodyFindReplace
from edgeward.policy.actions.restrict_ips import RestrictIps
from edgeward.policy.actions.set_vars import SetVars
from edgeward.policy.actions.sse_find_replace import SseFindReplace
from edgeward.policy.actions.terminate_tls import TerminateTlsAction
from edgeward.policy.actions.url_rewrite import UrlRewrite
from edgeward.policy.actions.verify_webhook import VerifyWebhook

_IMPLEMENTED: tuple[type[Action], ...] = (
    AddHeaders,
    BasicAuth,
    CircuitBreaker,
    CloseConnection,
    CompressResponse,
    CustomResponse,
    Deny,
    ForwardInternalAction,
    HttpRequest,
    JwtValidation,
    Log,
    OAuth,
    OpenIdConnect,
    OwaspCrsRequest,
    OwaspCrsResponse,
    RateLimit,
    Redirect,
    RemoveHeaders,
    RequestBodyFindReplace,
    ResponseBodyFindReplace,
    RestrictIps,
    SetVars,
    SseFindReplace,
    TerminateTlsAction,
    UrlRewrite,
    VerifyWebhook,
)

ACTIONS: dict[str, type[Action]] = {cls.type: cls for cls in _IMPLEMENTED}

# Other names of an implemented type found in the public docs (warned).
ALIASES: dict[str, str] = {
    "webhook-validation": "verify-webhook",  # the legacy name, still in some guides
    "oidc": "openid-connect",  # ActionHub and the migration guide's name
}

# Types of the public format that edgeward recognises but does not run: a
# policy using one fails to load with this reason, never silently.
_NO = "not supported by edgeward"
UNSUPPORTED: dict[str, str] = {
    "ai-gateway": _NO,
    "saml": _NO,
}
