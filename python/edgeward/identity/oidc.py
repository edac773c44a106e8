"""OpenID Connect: discovery, the provider's key set, ID-token validation.
Sans-IO like the rest: what needs the network is fetched through `Fetch`
effects, and the caches say when to fetch.

- **Discovery** (`Discovery`): ``<issuer>/.well-known/openid-configuration``,
  whose `issuer` must be the configured one (a trailing slash aside) and
  whose endpoints must be https (or loopback http when the edge config
  allows it). Kept for a day. A failure is retried with backoff (5 s,
  doubling to 5 min) and, until a document arrives, logins answer 503
  `ERR_EDGEWARD_2227`; a known document keeps serving while a refresh
  fails.
- **Keys**: the `jwks_uri` set, parsed by joserfc; refetched at most every
  30 s when a token names an unknown `kid`.
- **ID tokens** (OIDC Core §3.1.3.7): a signature by a key of the set with
  an algorithm the provider advertises (never `none` or an HMAC with a
  public key), `iss` equal to the discovered issuer, `aud` containing the
  client id (`azp` the client id when there are several audiences),
  `exp`/`iat` within 60 s of skew, and `nonce` equal to the one sent
  (compared in constant time).
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from edgeward.hooks import Effect, EffectResult, Fetch
from edgeward.identity.http import FETCH_TIMEOUT, ProviderError, check_url, fetch
from edgeward.identity.seal import same

DISCOVERY_TTL = 86_400.0
FIRST_RETRY, MAX_RETRY = 5.0, 300.0
KEY_REFRESH_INTERVAL = 30.0
CLOCK_SKEW = 60
ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class DiscoveryUnavailable(Exception):
    """No usable discovery document (yet): answer 503 and retry later."""


class InvalidIdToken(Exception):
    """An ID token that must be refused; the message is safe to log."""


@dataclass(frozen=True, slots=True)
class Metadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    end_session_endpoint: str | None
    token_auth: str  # client_secret_basic or client_secret_post
    algorithms: frozenset[str]
    code_challenge_methods: frozenset[str]


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def parse_metadata(data: Any, issuer: str, *, allow_insecure_loopback: bool) -> Metadata:
    if not isinstance(data, Mapping):
        raise ProviderError("discovery: not a JSON object")
    found = data.get("issuer")
    if not isinstance(found, str) or found.rstrip("/") != issuer.rstrip("/"):
        raise ProviderError(f"discovery: issuer {found!r} is not the configured {issuer!r}")
    urls: dict[str, str | None] = {}
    for key in (
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
        "end_session_endpoint",
    ):
        value = data.get(key)
        if value is None and key in ("userinfo_endpoint", "end_session_endpoint"):
            urls[key] = None
            continue
        if not isinstance(value, str):
            raise ProviderError(f"discovery: no {key}")
        problem = check_url(value, allow_insecure_loopback=allow_insecure_loopback)
        if problem:
            raise ProviderError(f"discovery: {key}: {problem}")
        urls[key] = value
    methods = data.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    token_auth = (
        "client_secret_basic"
        if "client_secret_basic" in methods or "client_secret_post" not in methods
        else "client_secret_post"
    )
    algs = data.get("id_token_signing_alg_values_supported") or ["RS256"]
    algorithms = frozenset(a for a in algs if isinstance(a, str) and a in ASYMMETRIC)
    if not algorithms:
        raise ProviderError("discovery: no supported asymmetric ID token algorithm")
    challenges = data.get("code_challenge_methods_supported") or []
    return Metadata(
        found,
        urls["authorization_endpoint"] or "",
        urls["token_endpoint"] or "",
        urls["jwks_uri"] or "",
        urls["userinfo_endpoint"],
        urls["end_session_endpoint"],
        token_auth,
        algorithms,
        frozenset(c for c in challenges if isinstance(c, str)),
    )


class Discovery:
    """What is known of one issuer: its metadata and its keys."""

    def __init__(self, issuer: str, *, allow_insecure_loopback: bool) -> None:
        self.issuer = issuer
        self.allow_insecure_loopback = allow_insecure_loopback
        self.metadata: Metadata | None = None
        self.expires_at = 0.0
        self.failure: str | None = None
        self.failures = 0
        self.next_attempt = 0.0
        self.keys: KeySet | None = None
        self.keys_fetched_at = float("-inf")
        self.inflight = False
        self.probed = False  # fetched once at load (`runtime.probe`)

    def wants_fetch(self, now: float) -> bool:
        if now < self.next_attempt:
            return False  # backing off after a failure
        if self.metadata is None:
            return True  # cold: every waiting login may try
        return not self.inflight and now >= self.expires_at

    def ensure(self, now: float) -> Generator[Effect, EffectResult, Metadata]:
        """The metadata, fetching it when due; `DiscoveryUnavailable` when
        there is none."""
        if self.wants_fetch(now):
            self.inflight = True
            try:
                result = yield from fetch(
                    Fetch(
                        discovery_url(self.issuer),
                        headers=(("accept", "application/json"),),
                        timeout_s=FETCH_TIMEOUT,
                    )
                )
            finally:
                self.inflight = False
            self.update(result.status, result.body, result.error, now)
        if self.metadata is None:
            raise DiscoveryUnavailable(self.failure or "discovery has not completed yet")
        return self.metadata

    def update(self, status: int, body: bytes, error: str | None, now: float) -> None:
        try:
            if status != 200:
                raise ProviderError(error or f"HTTP {status}")
            try:
                data = json.loads(body)
            except ValueError:
                raise ProviderError("not JSON") from None
            metadata = parse_metadata(
                data, self.issuer, allow_insecure_loopback=self.allow_insecure_loopback
            )
        except ProviderError as exc:
            self.failures += 1
            self.failure = f"{discovery_url(self.issuer)}: {exc}"
            delay = min(MAX_RETRY, FIRST_RETRY * 2 ** (self.failures - 1))
            self.next_attempt = now + delay
            return
        self.metadata = metadata
        self.failure = None
        self.failures = 0
        self.next_attempt = 0.0
        self.expires_at = now + DISCOVERY_TTL

    def key_set(
        self, metadata: Metadata, now: float, *, kid: str | None
    ) -> Generator[Effect, EffectResult, KeySet]:
        known = self.keys is not None and (kid is None or any(k.kid == kid for k in self.keys.keys))
        if known and self.keys is not None:
            return self.keys
        if now - self.keys_fetched_at < KEY_REFRESH_INTERVAL and self.keys is not None:
            return self.keys
        result = yield from fetch(
            Fetch(metadata.jwks_uri, headers=(("accept", "application/json"),))
        )
        self.keys_fetched_at = now
        if result.status != 200:
            raise InvalidIdToken(f"JWKS {metadata.jwks_uri}: {result.error or result.status}")
        try:
            document = json.loads(result.body)
            public = [k for k in document["keys"] if k.get("kty") != "oct"]
            self.keys = KeySet.import_key_set({"keys": public})
        except (ValueError, KeyError, TypeError, AttributeError, JoseError) as exc:
            raise InvalidIdToken(f"JWKS {metadata.jwks_uri}: unusable ({exc})") from None
        return self.keys


def validate_id_token(
    token: str,
    keys: KeySet,
    metadata: Metadata,
    *,
    client_id: str,
    nonce: str | None,
    now: float,
) -> dict[str, Any]:
    """The claims of a valid ID token, or `InvalidIdToken`."""
    try:
        decoded = jwt.decode(token, keys, algorithms=sorted(metadata.algorithms))
    except (JoseError, ValueError) as exc:
        raise InvalidIdToken(f"ID token signature: {type(exc).__name__}") from None
    claims = dict(decoded.claims)
    registry = JWTClaimsRegistry(
        now=int(now),
        leeway=CLOCK_SKEW,
        iss={"essential": True, "value": metadata.issuer},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise InvalidIdToken(f"ID token claims: {exc.description or type(exc).__name__}") from None
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if client_id not in audiences:
        raise InvalidIdToken("ID token: the client id is not in its audience")
    if len(audiences) > 1 and claims.get("azp") not in (None, client_id):
        raise InvalidIdToken("ID token: azp is another client")
    if nonce is not None:
        got = claims.get("nonce")
        if not isinstance(got, str) or not same(got, nonce):
            raise InvalidIdToken("ID token: nonce mismatch")
    return claims


def token_kid(token: str) -> str | None:
    try:
        from joserfc.jws import extract_compact

        header = extract_compact(token.encode()).protected
    except (JoseError, ValueError):
        return None
    kid = header.get("kid")
    return kid if isinstance(kid, str) else None


__all__ = [
    "Discovery",
    "DiscoveryUnavailable",
    "InvalidIdToken",
    "Metadata",
    "discovery_url",
    "parse_metadata",
    "token_kid",
    "validate_id_token",
]
