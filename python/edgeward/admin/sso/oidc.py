"""OpenID Connect login to the console and API, sans-IO: `start` and
`finish` are generators that yield `edgeward.hooks.Fetch` effects (the
discovery document, the token endpoint, the provider's keys) and return
their result; the Starlette handler performs the fetches and moves bytes.

The protocol pieces are `edgeward.identity`'s (the openid-connect action's):
discovery and its https rules, the key set, ID-token validation (signature
by an advertised asymmetric algorithm, iss, aud/azp, exp/iat, nonce), the
token request. What differs from the action is where the transaction lives:
here the state, the nonce and the PKCE verifier are kept server-side in the
state store (`login_states`, single use), under the SHA-256 of the state,
and bound to the browser by a random value in a cookie whose SHA-256 the
transaction holds (a callback URL opened in another browser is refused).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from edgeward.admin.sso.settings import OidcSettings
from edgeward.hooks import Effect, EffectResult
from edgeward.identity.http import ProviderError, post_form
from edgeward.identity.oidc import (
    Discovery,
    DiscoveryUnavailable,
    InvalidIdToken,
    Metadata,
    token_kid,
    validate_id_token,
)
from edgeward.identity.seal import same

Op = Generator[Effect, EffectResult, Any]
TRANSACTION_TTL = 600.0  # a login must complete within 10 minutes


class OidcLoginError(Exception):
    """A login that failed; `reason` is for the audit log (never a token)."""

    def __init__(self, status: int, title: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.title = title
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Started:
    location: str  # the provider's authorization URL
    key: str  # where the transaction is kept: "oidc:" + SHA-256(state)
    transaction: dict[str, Any]
    browser: str  # the cookie value binding the login to this browser


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def transaction_key(state: str) -> str:
    return "oidc:" + digest(state)


class OidcLogin:
    def __init__(self, settings: OidcSettings, redirect_uri: str) -> None:
        self.settings = settings
        self.redirect_uri = redirect_uri
        self.discovery = Discovery(
            settings.issuer_url,
            allow_insecure_loopback=settings.allow_insecure_loopback_issuer,
        )

    def start(self, now: float) -> Op:
        """-> `Started`. `DiscoveryUnavailable` when the provider is unknown yet."""
        metadata: Metadata = yield from self.discovery.ensure(now)
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(48)
        browser = secrets.token_urlsafe(32)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        params = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(self.settings.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge.decode().rstrip("="),
            "code_challenge_method": "S256",
        }
        endpoint = metadata.authorization_endpoint
        joiner = "&" if "?" in endpoint else "?"
        tx = {"nonce": nonce, "verifier": verifier, "browser": digest(browser), "at": now}
        return Started(
            endpoint + joiner + urlencode(params, quote_via=quote),
            transaction_key(state),
            tx,
            browser,
        )

    def finish(
        self,
        query: Mapping[str, str],
        transaction: Mapping[str, Any] | None,
        browser: str,
        now: float,
    ) -> Op:
        """The callback: -> the ID token's claims. `transaction` is what
        `start` stored under the state's key, taken (deleted) by the caller."""
        if transaction is None:
            raise OidcLoginError(400, "Login expired", "unknown, expired or replayed state")
        if not browser or not same(digest(browser), str(transaction.get("browser", ""))):
            raise OidcLoginError(400, "Login expired", "the callback came to another browser")
        if "error" in query:
            error = "".join(c for c in query["error"][:64] if c.isalnum() or c in "_-")
            raise OidcLoginError(403, "Login refused", f"the provider said {error}")
        code = query.get("code", "")
        if not code:
            raise OidcLoginError(400, "Login failed", "no code in the callback")
        try:
            metadata: Metadata = yield from self.discovery.ensure(now)
            form = {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": str(transaction.get("verifier", "")),
            }
            headers: list[tuple[str, str]] = []
            secret = self.settings.client_secret
            if secret and metadata.token_auth == "client_secret_basic":
                pair = f"{quote(self.settings.client_id, safe='')}:{quote(secret, safe='')}"
                headers.append(
                    ("authorization", "Basic " + base64.b64encode(pair.encode()).decode())
                )
            else:
                form["client_id"] = self.settings.client_id
                if secret:
                    form["client_secret"] = secret
            tokens = yield from post_form(
                metadata.token_endpoint, form, headers, what="token exchange"
            )
            id_token = tokens.get("id_token") if isinstance(tokens, Mapping) else None
            if not isinstance(id_token, str) or not id_token:
                raise InvalidIdToken("the token response has no id_token")
            keys = yield from self.discovery.key_set(metadata, now, kid=token_kid(id_token))
            claims = validate_id_token(
                id_token,
                keys,
                metadata,
                client_id=self.settings.client_id,
                nonce=str(transaction.get("nonce", "")),
                now=now,
            )
        except DiscoveryUnavailable as exc:
            raise OidcLoginError(503, "Login unavailable", f"discovery: {exc}") from None
        except InvalidIdToken as exc:
            raise OidcLoginError(401, "Login failed", str(exc)) from None
        except ProviderError as exc:
            raise OidcLoginError(502, "Login failed", str(exc)) from None
        return claims

    def subject(self, claims: Mapping[str, Any]) -> str:
        """The identity a user is bound to: the issuer and its `sub`."""
        return f"oidc|{claims.get('iss')}|{claims.get('sub')}"


def email_of(claims: Mapping[str, Any]) -> str:
    """The verified email of the claims ('' when absent or unverified)."""
    email = claims.get("email")
    if not isinstance(email, str) or claims.get("email_verified") is False:
        return ""
    return email


__all__ = [
    "OidcLogin",
    "OidcLoginError",
    "Started",
    "digest",
    "email_of",
    "transaction_key",
]
