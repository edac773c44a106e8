"""JSON Web Key Sets for `jwt-validation`: parsing, key choice and a sans-IO
cache of the sets served at JWKS URLs.

Keys are parsed by joserfc. Only signature keys are kept (`use` absent or
`sig`), RSA keys of at least 2048 bits, and symmetric (`oct`) keys only when
they come from the policy itself, never from a URL: a public JWKS holding a
shared secret is a misconfiguration, and accepting one would let HS256
tokens be forged by anyone who can read it.

The cache never does I/O: `JwksSource.wants_fetch()` says whether to fetch
now, the action performs the `Fetch` effect and hands the result to
`JwksSource.update()`. The rules that keep it from hammering a JWKS server:

- a set is kept for its `Cache-Control: max-age` (bounded to 1 min..24 h;
  15 min without one, the public gateway's refresh period), and used up to
  `STALE_GRACE` longer when refreshing fails;
- a token whose `kid` is unknown triggers a refresh, at most once per
  `REFRESH_INTERVAL` per URL whatever the number of such tokens (a stale
  set is retried at that pace too), and only one fetch per URL is in
  flight while keys exist;
- with no keys at all (cold start, or the server failing), at most
  `COLD_INFLIGHT` fetches run at once, and none within `RETRY_INTERVAL` of
  a failure: requests then fail closed (no keys, no access).
"""

from __future__ import annotations

import contextlib
import json
import re
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence

from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, JWKRegistry, OctKey, OKPKey, RSAKey

from edgeward.hooks import Fetch, FetchResult

Key = RSAKey | ECKey | OKPKey | OctKey

DEFAULT_TTL = 900.0
MIN_TTL, MAX_TTL = 60.0, 86_400.0
STALE_GRACE = 3600.0
REFRESH_INTERVAL = 30.0
RETRY_INTERVAL = 5.0
COLD_INFLIGHT = 4
FETCH_TIMEOUT = 5.0
MAX_KEYS = 100  # per set
MAX_SOURCES = 32  # distinct (interpolated) URLs remembered per action
MIN_RSA_BITS = 2048
MIN_OCT_BYTES = 32  # RFC 7518 §3.2: at least the hash size; HS256's is 32

# The key type each algorithm needs (an RSA key never verifies HS256...).
KEY_TYPES: Mapping[str, str] = {
    **dict.fromkeys(("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"), "RSA"),
    **dict.fromkeys(("ES256", "ES384", "ES512"), "EC"),
    **dict.fromkeys(("EdDSA", "Ed25519", "Ed448"), "OKP"),
    **dict.fromkeys(("HS256", "HS384", "HS512"), "oct"),
}

_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-cache|no-store)\s*(?:,|$)", re.IGNORECASE)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Without joserfc's SecurityWarnings (short keys, the `EdDSA` name RFC
    9864 retires): edgeward refuses weak keys itself, as errors, and `EdDSA`
    is what identity providers still send."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        yield


class JwksError(ValueError):
    """A key set (or one key of a static set) that cannot be used."""


def import_key(jwk: object, *, symmetric: bool) -> Key:
    """One JWK as a verification key; raises `JwksError` saying why not."""
    if not isinstance(jwk, Mapping):
        raise JwksError("a key is a JSON object")
    kty = jwk.get("kty")
    if kty == "oct" and not symmetric:
        raise JwksError("symmetric (oct) keys are only accepted from the policy itself")
    if kty not in ("RSA", "EC", "OKP", "oct"):
        raise JwksError(f"unsupported key type {kty!r}")
    if jwk.get("use", "sig") != "sig":
        raise JwksError(f"key use {jwk.get('use')!r} is not 'sig'")
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        raise JwksError("key_ops does not allow 'verify'")
    try:
        with quiet():  # sizes are checked below, as errors rather than warnings
            key = JWKRegistry.import_key(dict(jwk))
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise JwksError(f"unusable {kty} key: {exc or type(exc).__name__}") from None
    if isinstance(key, RSAKey) and key.public_key.key_size < MIN_RSA_BITS:
        raise JwksError(f"RSA key of {key.public_key.key_size} bits; at least {MIN_RSA_BITS}")
    if isinstance(key, OctKey) and len(key.raw_value) < MIN_OCT_BYTES:
        raise JwksError(f"symmetric key of {len(key.raw_value)} bytes; at least {MIN_OCT_BYTES}")
    assert isinstance(key, RSAKey | ECKey | OKPKey | OctKey)
    return key


def parse_jwks(document: object, *, symmetric: bool = False) -> tuple[list[Key], list[str]]:
    """The usable keys of a JWKS (`{"keys": [...]}`) and why others were
    skipped. Raises `JwksError` when it is not a key set at all."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise JwksError('not a JWK set (a JSON object with a "keys" list)')
    keys: list[Key] = []
    skipped: list[str] = []
    for i, jwk in enumerate(document["keys"][:MAX_KEYS]):
        try:
            keys.append(import_key(jwk, symmetric=symmetric))
        except JwksError as exc:
            skipped.append(f"keys[{i}]: {exc}")
    return keys, skipped


def candidates(keys: Iterable[Key], alg: str, kid: str | None) -> list[Key]:
    """The keys that may have signed a token with this `alg` and `kid`:
    the right key type, an `alg` parameter (if any) equal to `alg`, and the
    same `kid` when the token names one."""
    kty = KEY_TYPES.get(alg)
    out = []
    for key in keys:
        if key.key_type != kty:
            continue
        if key.get("alg") not in (None, alg):
            continue
        if kid is not None and key.kid != kid:
            continue
        out.append(key)
    return out


def cache_ttl(headers: Sequence[tuple[str, str]]) -> float:
    """Seconds to keep a fetched set, from its Cache-Control."""
    value = ",".join(v for n, v in headers if n.lower() == "cache-control")
    if _NO_CACHE.search(value):
        return MIN_TTL
    m = _MAX_AGE.search(value)
    if m is None:
        return DEFAULT_TTL
    return min(max(float(m.group(1)), MIN_TTL), MAX_TTL)


class JwksSource:
    """What is known of one JWKS URL."""

    __slots__ = (
        "expires_at",
        "failure",
        "fetched_at",
        "inflight",
        "keys",
        "last_attempt",
        "last_kid_refresh",
        "url",
    )

    def __init__(self, url: str) -> None:
        self.url = url
        self.keys: tuple[Key, ...] = ()
        self.fetched_at = -1.0  # last successful fetch; < 0: never
        self.expires_at = 0.0
        self.last_attempt = float("-inf")
        self.last_kid_refresh = float("-inf")  # the last fetch an unknown kid caused
        self.failure: str | None = None  # why the last fetch failed
        self.inflight = 0

    def usable(self, now: float) -> bool:
        return self.fetched_at >= 0 and now < self.expires_at + STALE_GRACE

    def wants_fetch(self, now: float, *, unknown_kid: bool = False) -> bool:
        if not self.usable(now):
            failed_recently = self.failure is not None and now - self.last_attempt < RETRY_INTERVAL
            return self.inflight < COLD_INFLIGHT and not failed_recently
        if self.inflight:
            return False
        if unknown_kid:
            return now - self.last_kid_refresh >= REFRESH_INTERVAL
        return now >= self.expires_at and now - self.last_attempt >= REFRESH_INTERVAL

    def request(self, now: float, *, unknown_kid: bool = False) -> Fetch:
        """The fetch to perform; counts as in flight until `update` or
        `abandon`."""
        self.last_attempt = now
        if unknown_kid:
            self.last_kid_refresh = now
        self.inflight += 1
        accept = (("accept", "application/jwk-set+json, application/json"),)
        return Fetch(self.url, headers=accept, timeout_s=FETCH_TIMEOUT)

    def abandon(self) -> None:
        self.inflight = max(0, self.inflight - 1)

    def update(self, result: FetchResult, now: float) -> None:
        self.abandon()
        try:
            if result.status != 200:
                raise JwksError(result.error or f"HTTP status {result.status}")
            try:
                document = json.loads(result.body)
            except ValueError:
                raise JwksError("the response is not JSON") from None
            keys, skipped = parse_jwks(document)
            if not keys:
                why = f" ({'; '.join(skipped[:3])})" if skipped else ""
                raise JwksError(f"the set holds no usable signature key{why}")
        except JwksError as exc:
            self.failure = f"{self.url}: {exc}"
            return
        self.keys = tuple(keys)
        self.failure = None
        self.fetched_at = now
        self.expires_at = now + cache_ttl(result.headers)


class JwksCache:
    """The sources of one action, by URL (bounded, least recently used out)."""

    def __init__(self) -> None:
        self._sources: OrderedDict[str, JwksSource] = OrderedDict()

    def source(self, url: str) -> JwksSource:
        found = self._sources.get(url)
        if found is None:
            found = self._sources[url] = JwksSource(url)
            if len(self._sources) > MAX_SOURCES:
                self._sources.popitem(last=False)
        else:
            self._sources.move_to_end(url)
        return found


__all__ = [
    "KEY_TYPES",
    "JwksCache",
    "JwksError",
    "JwksSource",
    "Key",
    "cache_ttl",
    "candidates",
    "import_key",
    "parse_jwks",
    "quiet",
]
