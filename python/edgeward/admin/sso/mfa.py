"""The MFA rule: a login counts only when the IdP says a second factor was
used. For OpenID Connect that is the ID token's `amr` (RFC 8176: any of the
configured values, `mfa` by default) or its `acr` (one of the configured
values); for SAML, an `AuthnContextClassRef` of the assertion among the
configured classes. The IdP is trusted to say it truthfully: that is what
its signature on the token or assertion is for."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from edgeward.admin.sso.settings import MfaRule


def oidc_refusal(rule: MfaRule, claims: Mapping[str, Any]) -> str | None:
    """Why the ID token's claims do not meet the rule, or None."""
    if not rule.required:
        return None
    amr = claims.get("amr")
    methods = [amr] if isinstance(amr, str) else amr if isinstance(amr, list) else []
    if any(isinstance(m, str) and m in rule.amr for m in methods):
        return None
    acr = claims.get("acr")
    if isinstance(acr, str) and acr in rule.acr:
        return None
    shown = ", ".join(str(m) for m in methods) or "none"
    return f"the identity provider reported amr [{shown}], acr {acr or 'none'}"


def saml_refusal(rule: MfaRule, contexts: Iterable[str]) -> str | None:
    if not rule.required:
        return None
    found = list(contexts)
    if any(c in rule.saml_authn_context for c in found):
        return None
    return f"the identity provider reported AuthnContextClassRef {', '.join(found) or 'none'}"


__all__ = ["oidc_refusal", "saml_refusal"]
