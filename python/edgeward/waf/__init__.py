"""The web application firewall: the OWASP Core Rule Set on ModSecurity v3.

`edgeward.waf.modsecurity` binds libmodsecurity (ctypes); `edgeward.waf.crs`
loads the installed CRS and inspects requests and responses. Blocking
calls, no event loop: the policy actions run them in a worker thread
(docs/policy.md, "owasp-crs-request / owasp-crs-response").
"""

from edgeward.waf.crs import (
    BODY_PREFIX,
    DEFAULT_RULES_DIR,
    INBOUND_THRESHOLD,
    OUTBOUND_THRESHOLD,
    CoreRuleSet,
    CrsError,
    MatchedRule,
    RequestInput,
    ResponseInput,
    Verdict,
)
from edgeward.waf.modsecurity import ModSecurityError

__all__ = [
    "BODY_PREFIX",
    "DEFAULT_RULES_DIR",
    "INBOUND_THRESHOLD",
    "OUTBOUND_THRESHOLD",
    "CoreRuleSet",
    "CrsError",
    "MatchedRule",
    "ModSecurityError",
    "RequestInput",
    "ResponseInput",
    "Verdict",
]
