"""`api.sso:` in edge.yml: how people sign in to the console and the API
(docs/control-plane.md#sso-and-mfa). Parsed by the config loader, which
reports a `SettingsError` at its location; nothing here imports Starlette.

    api:
      address: 127.0.0.1:9443
      sso:
        public_url: https://admin.example.com   # what browsers reach the API at
        oidc: {issuer_url: ..., client_id: ..., client_secret: ...}
        saml: {idp_metadata: idp.xml, sp_cert: sp.pem, sp_key: sp-key.pem}
        mfa: {required: true, amr: [mfa], acr: [], saml_authn_context: [...]}
        session: {max_duration: 43200, idle_duration: 3600}
        login_rate: {attempts: 10, per_seconds: 60}
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from edgeward.errors import EdgewardError

# RFC 8176 `amr` values that show more than one factor was used.
DEFAULT_AMR = ("mfa",)
# SAML AuthnContextClassRef values of multi-factor logins (REFEDS, Microsoft
# Entra, SAML 2.0's two-factor and time-synchronised token classes).
DEFAULT_SAML_CONTEXTS = (
    "https://refeds.org/profile/mfa",
    "http://schemas.microsoft.com/claims/multipleauthn",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorUnregistered",
    "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken",
)


class SettingsError(EdgewardError):
    def __init__(self, path: tuple[str | int, ...], msg: str) -> None:
        super().__init__(msg)
        self.path = path
        self.msg = msg


@dataclass(frozen=True, slots=True)
class OidcSettings:
    issuer_url: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    allow_insecure_loopback_issuer: bool = False  # tests: http:// issuer on loopback


@dataclass(frozen=True, slots=True)
class SamlSettings:
    idp_metadata: Path  # the IdP's metadata XML (its certificate and SSO URL)
    entity_id: str  # ours; default <public_url>/saml/metadata
    sp_cert: Path | None = None  # to sign our AuthnRequests (optional)
    sp_key: Path | None = None
    xmlsec_binary: str = "/usr/bin/xmlsec1"


@dataclass(frozen=True, slots=True)
class MfaRule:
    """What counts as a multi-factor login. `required: false` turns the
    check off (not recommended: the API's keys can mint authtokens)."""

    required: bool = True
    amr: tuple[str, ...] = DEFAULT_AMR  # OIDC: any of these in the ID token's amr
    acr: tuple[str, ...] = ()  # OIDC: or the ID token's acr is one of these
    saml_authn_context: tuple[str, ...] = DEFAULT_SAML_CONTEXTS


@dataclass(frozen=True, slots=True)
class SsoSettings:
    public_url: str  # no trailing slash
    oidc: OidcSettings | None = None
    saml: SamlSettings | None = None
    mfa: MfaRule = field(default_factory=MfaRule)
    max_session: float = 12 * 3600.0
    idle_session: float = 3600.0
    login_attempts: int = 10  # per client IP ...
    login_window: float = 60.0  # ... per this many seconds

    @property
    def secure(self) -> bool:
        """https: cookies are `__Host-` and Secure (http only for loopback tests)."""
        return self.public_url.startswith("https://")

    @property
    def oidc_redirect_uri(self) -> str:
        return self.public_url + "/login/oidc/callback"

    @property
    def saml_acs_url(self) -> str:
        return self.public_url + "/login/saml/acs"


class _Reader:
    def __init__(self, data: Any, path: tuple[str | int, ...]) -> None:
        if not isinstance(data, Mapping):
            raise SettingsError(path, "must be a mapping")
        self.data = data
        self.path = path
        self.taken: set[str] = set()

    def take(self, name: str, kind: type, default: Any = None, *, required: bool = False) -> Any:
        self.taken.add(name)
        if name not in self.data or self.data[name] is None:
            if required:
                raise SettingsError((*self.path, name), "is required")
            return default
        value = self.data[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise SettingsError((*self.path, name), f"must be a {kind.__name__}")
        return value

    def strings(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.take(name, list, None)
        if value is None:
            return default
        if not all(isinstance(v, str) and v for v in value):
            raise SettingsError((*self.path, name), "must be a list of strings")
        return tuple(value)

    def sub(self, name: str) -> _Reader | None:
        self.taken.add(name)
        if name not in self.data:
            return None
        return _Reader(self.data[name], (*self.path, name))

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.taken)
        if unknown:
            raise SettingsError((*self.path, unknown[0]), "unknown key")


def _file(reader: _Reader, name: str, base: Path, *, required: bool) -> Path | None:
    value = reader.take(name, str, None, required=required)
    if value is None:
        return None
    path = Path(os.path.abspath(base / value))
    if not path.is_file():
        raise SettingsError((*reader.path, name), f"file not found: {path}")
    return path


def parse(data: Any, base: Path, path: tuple[str | int, ...] = ()) -> SsoSettings:
    top = _Reader(data, path)
    public = top.take("public_url", str, required=True).rstrip("/")
    parts = urlsplit(public)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.path:
        raise SettingsError((*path, "public_url"), "must be https://host[:port]")
    if parts.scheme == "http" and not loopback:
        raise SettingsError((*path, "public_url"), "must be https:// (http only on loopback)")
    oidc = None
    if (sec := top.sub("oidc")) is not None:
        oidc = OidcSettings(
            issuer_url=sec.take("issuer_url", str, required=True),
            client_id=sec.take("client_id", str, required=True),
            client_secret=sec.take("client_secret", str, ""),
            scopes=sec.strings("scopes", ("openid", "email", "profile")),
            allow_insecure_loopback_issuer=sec.take("allow_insecure_loopback_issuer", bool, False),
        )
        if "openid" not in oidc.scopes:
            raise SettingsError((*sec.path, "scopes"), "must include openid")
        sec.done()
    saml = None
    if (sec := top.sub("saml")) is not None:
        metadata = _file(sec, "idp_metadata", base, required=True)
        assert metadata is not None
        cert = _file(sec, "sp_cert", base, required=False)
        key = _file(sec, "sp_key", base, required=False)
        if (cert is None) != (key is None):
            raise SettingsError(sec.path, "sp_cert and sp_key go together")
        saml = SamlSettings(
            idp_metadata=metadata,
            entity_id=sec.take("entity_id", str, public + "/saml/metadata"),
            sp_cert=cert,
            sp_key=key,
            xmlsec_binary=sec.take("xmlsec_binary", str, "/usr/bin/xmlsec1"),
        )
        sec.done()
    if oidc is None and saml is None:
        raise SettingsError(path, "name an identity provider: oidc, saml or both")
    mfa = MfaRule()
    if (sec := top.sub("mfa")) is not None:
        mfa = MfaRule(
            required=sec.take("required", bool, True),
            amr=sec.strings("amr", DEFAULT_AMR),
            acr=sec.strings("acr", ()),
            saml_authn_context=sec.strings("saml_authn_context", DEFAULT_SAML_CONTEXTS),
        )
        sec.done()
    max_session, idle_session = 12 * 3600.0, 3600.0
    if (sec := top.sub("session")) is not None:
        max_session = sec.take("max_duration", float, max_session)
        idle_session = sec.take("idle_duration", float, idle_session)
        if max_session <= 0 or idle_session <= 0:
            raise SettingsError(sec.path, "durations are positive seconds")
        sec.done()
    attempts, window = 10, 60.0
    if (sec := top.sub("login_rate")) is not None:
        attempts = sec.take("attempts", int, attempts)
        window = sec.take("per_seconds", float, window)
        if attempts < 1 or window <= 0:
            raise SettingsError(sec.path, "attempts >= 1 per a positive number of seconds")
        sec.done()
    top.done()
    return SsoSettings(public, oidc, saml, mfa, max_session, idle_session, attempts, window)


__all__ = ["MfaRule", "OidcSettings", "SamlSettings", "SettingsError", "SsoSettings", "parse"]
