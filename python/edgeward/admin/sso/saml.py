"""SAML 2.0 login to the console and API: SP-initiated, HTTP-Redirect
binding to the IdP, HTTP-POST binding back to our assertion consumer
service (ACS). pysaml2 does the XML: it builds the AuthnRequest and
verifies the response with Debian's `xmlsec1` (the assertion's signature
against the IdP certificate of its metadata, the audience, the recipient
and destination, `InResponseTo` against our outstanding request,
`NotBefore`/`NotOnOrAfter`). On top of it, here:

- the outstanding request ids live in the state store (`login_states`),
  each usable once, so a response to a request we did not send, or one
  already answered, is refused (no unsolicited logins);
- the assertion's ID is recorded until its `NotOnOrAfter`: the same
  assertion posted again is a replay and is refused;
- the times and the recipient are checked again on the parsed assertion
  (so they hold even if a pysaml2 setting changes);
- the MFA rule is checked on the `AuthnContextClassRef` (`mfa.py`).

Blocking (xmlsec1 runs as a subprocess): the handler calls these in a
worker thread. Sans-IO otherwise: no sockets, the caller stores state.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from edgeward.admin.sso.settings import SamlSettings
from edgeward.errors import EdgewardError

CLOCK_SKEW = 60  # seconds of clock difference accepted with the IdP
REQUEST_TTL = 600.0
_PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"


class SamlConfigError(EdgewardError):
    """`api.sso.saml` cannot be used (a startup error, one line)."""


class SamlLoginError(Exception):
    def __init__(self, status: int, title: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.title = title
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SamlIdentity:
    issuer: str
    name_id: str
    email: str
    assertion_id: str
    not_on_or_after: datetime
    contexts: tuple[str, ...]  # AuthnContextClassRef values

    @property
    def subject(self) -> str:
        return f"saml|{self.issuer}|{self.name_id}"


class SamlSp:
    """Our service provider, built once from the settings."""

    def __init__(self, settings: SamlSettings, acs_url: str) -> None:
        from saml2 import BINDING_HTTP_POST
        from saml2.client import Saml2Client
        from saml2.config import SPConfig

        self.settings = settings
        self.acs_url = acs_url
        signed = settings.sp_key is not None
        conf: dict[str, Any] = {
            "entityid": settings.entity_id,
            "xmlsec_binary": settings.xmlsec_binary,
            "accepted_time_diff": CLOCK_SKEW,
            "service": {
                "sp": {
                    "endpoints": {"assertion_consumer_service": [(acs_url, BINDING_HTTP_POST)]},
                    "allow_unsolicited": False,
                    "authn_requests_signed": signed,
                    "want_assertions_signed": True,
                    "want_response_signed": False,
                    "name_id_format_allow_create": True,
                }
            },
            "metadata": {"local": [str(settings.idp_metadata)]},
        }
        if signed:
            conf["key_file"] = str(settings.sp_key)
            conf["cert_file"] = str(settings.sp_cert)
        if not os.access(settings.xmlsec_binary, os.X_OK):
            missing = settings.xmlsec_binary
            raise SamlConfigError(
                f"api.sso.saml: {missing} is missing (Debian: apt-get install xmlsec1)"
            )
        try:
            config = SPConfig()
            config.load(conf)
            self.client = Saml2Client(config=config)
        except Exception as exc:  # pysaml2 raises many types for a bad metadata file
            raise SamlConfigError(f"api.sso.saml: {_name(exc)}") from None
        if not self.client.metadata.identity_providers():
            raise SamlConfigError(f"api.sso.saml: no IdP in {settings.idp_metadata}")

    def metadata(self) -> bytes:
        """Our SP metadata, for the IdP's administrator."""
        from saml2.metadata import entity_descriptor

        return str(entity_descriptor(self.client.config)).encode()

    def start(self) -> tuple[str, str]:
        """-> (the IdP's URL to redirect to, the request id to remember)."""
        from saml2 import BINDING_HTTP_REDIRECT

        request_id, info = self.client.prepare_for_authenticate(binding=BINDING_HTTP_REDIRECT)
        location = dict(info["headers"])["Location"]
        return str(location), str(request_id)

    def finish(
        self, saml_response: str, outstanding: dict[str, str], now: datetime
    ) -> SamlIdentity:
        """Verify a posted SAMLResponse answering one of `outstanding`."""
        from saml2 import BINDING_HTTP_POST

        try:
            response = self.client.parse_authn_request_response(
                saml_response, BINDING_HTTP_POST, outstanding=outstanding
            )
        except Exception as exc:  # pysaml2 raises many types; each is a refusal
            raise SamlLoginError(
                401, "Login failed", f"SAML response refused: {_name(exc)}"
            ) from None
        if response is None or response.assertion is None:
            raise SamlLoginError(
                401, "Login failed", "SAML response refused: no usable response or assertion"
            )
        assertion = response.assertion
        if not getattr(assertion, "signature", None):
            raise SamlLoginError(401, "Login failed", "the assertion is not signed")
        self._check_conditions(assertion, now)
        issuer = str(response.issuer() or "")
        name_id = response.name_id.text if response.name_id is not None else ""
        attributes = response.ava or {}
        email = ""
        for key in ("mail", "email", "emailAddress", "urn:oid:0.9.2342.19200300.100.1.3"):
            values = attributes.get(key)
            if values:
                email = str(values[0])
                break
        if not email and name_id and "@" in name_id:
            email = name_id
        contexts = tuple(
            str(info[0]) for info in response.authn_info() if info and info[0] is not None
        )
        not_after = _time(assertion.conditions.not_on_or_after) if assertion.conditions else None
        return SamlIdentity(
            issuer, str(name_id), email, str(assertion.id), not_after or now, contexts
        )

    def _check_conditions(self, assertion: Any, now: datetime) -> None:
        conditions = assertion.conditions
        if conditions is None:
            raise SamlLoginError(401, "Login failed", "the assertion has no conditions")
        audiences = [
            a.text for r in conditions.audience_restriction or () for a in r.audience or ()
        ]
        if self.settings.entity_id not in audiences:
            raise SamlLoginError(401, "Login failed", "the assertion is for another audience")
        skew = float(CLOCK_SKEW)
        before = _time(conditions.not_before)
        after = _time(conditions.not_on_or_after)
        if before is not None and (before - now).total_seconds() > skew:
            raise SamlLoginError(401, "Login failed", "the assertion is not valid yet (NotBefore)")
        if after is None or (now - after).total_seconds() > skew:
            raise SamlLoginError(401, "Login failed", "the assertion has expired (NotOnOrAfter)")
        subject = assertion.subject
        confirmations = subject.subject_confirmation if subject is not None else []
        recipients = [
            c.subject_confirmation_data.recipient
            for c in confirmations or ()
            if c.subject_confirmation_data is not None
        ]
        if self.acs_url not in recipients:
            raise SamlLoginError(401, "Login failed", "the assertion is for another recipient")


def in_response_to(saml_response: str) -> str:
    """The `InResponseTo` of a posted response (read before verifying, to
    find the outstanding request; verification then checks it)."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring

    try:
        root = fromstring(base64.b64decode(saml_response, validate=False))
    except (ValueError, binascii.Error, ParseError, DefusedXmlException):
        return ""
    if root.tag != f"{{{_PROTOCOL}}}Response":
        return ""
    return str(root.get("InResponseTo", ""))


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _name(exc: Exception) -> str:
    text = str(exc).splitlines()[0][:160] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


__all__ = [
    "REQUEST_TTL",
    "SamlConfigError",
    "SamlIdentity",
    "SamlLoginError",
    "SamlSp",
    "in_response_to",
]
