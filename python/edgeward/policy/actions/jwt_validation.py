"""`jwt-validation`: let a request through only with valid signed JWTs.

Each configured token (`http.tokens`, all required) is read from a header
(after its `prefix`), a JSON or form body field, or a cookie (an edgeward
addition), parsed as a compact JWS and verified with joserfc:

- the `alg` must be in `jws.allowed_algorithms` (`none` is refused at load)
  and the key must be of that algorithm's type and curve, so an RSA public
  key can never verify an HS256 token (no algorithm confusion); keys come
  from the policy (`jws.keys.sources.jwks`, an edgeward addition) or from
  JWKS URLs (`additional_jkus`), never from the token's own header;
- `iss` must equal one of `issuer.allow_list`, `aud` contain one of
  `audience.allow_list`, `exp`/`nbf`/`iat` hold within `clock_skew`
  (default 60 s, like go-jose), and `required_claims` (default `[exp]`) be
  present.

JWKS are fetched through the `Fetch` effect and cached (`edgeward.policy.
jwks`). A failure answers 401 (`WWW-Authenticate: Bearer`), or 503 when no
key set could be fetched (fail closed), unless `enforce: false`. Results:
`actions.ngrok.jwt_validation.tokens[i].{header, location,
location_property, payload, signature, verified}` and `.error.{code,
message}`. Tokens never appear in events or logs.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from joserfc.errors import (
    ClaimError,
    ExpiredTokenError,
    JoseError,
    MissingClaimError,
)
from joserfc.jws import CompactSignature, extract_compact, validate_compact
from joserfc.jwt import JWTClaimsRegistry

from edgeward import native
from edgeward.hooks import Effect, EffectResult
from edgeward.policy.actions._http import error_decision
from edgeward.policy.actions.base import (
    Action,
    ActionContext,
    CompileScope,
    ConfigReader,
    Decision,
    ErrorCode,
    Phase,
)
from edgeward.policy.config import constant
from edgeward.policy.jwks import (
    KEY_TYPES,
    JwksCache,
    JwksError,
    JwksSource,
    Key,
    candidates,
    import_key,
    quiet,
)

TOKEN_TYPES = ("id_token", "access_token", "at+jwt", "it+jwt", "plain", "jwt")
METHODS = ("header", "body", "cookie")
BODY_METHODS = frozenset({b"POST", b"PUT", b"PATCH"})
MAX_TRIED_KEYS = 10  # keys tried for one token without a matching kid
_STATUS_TEXT = {401: "Unauthorized", 413: "Payload Too Large", 503: "Service Unavailable"}


class _Reject(Exception):
    """One token failed: the answer's code, status and message."""

    def __init__(self, code: ErrorCode, message: str, *, status: int = 401) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class TokenSpec:
    type: str
    method: str
    name: native.Template
    prefix: native.Template | None


class JwtValidation(Action):
    type = "jwt-validation"
    phases = frozenset({Phase.HTTP_REQUEST})

    def __init__(
        self,
        *,
        issuers: Sequence[native.Template],
        audiences: Sequence[native.Template],
        tokens: Sequence[TokenSpec],
        algorithms: Sequence[str],
        static_keys: Sequence[Key],
        jkus: Sequence[native.Template],
        require_kid: bool,
        clock_skew: float,
        required_claims: Sequence[str],
        enforce: bool,
    ) -> None:
        self.issuers = tuple(issuers)
        self.audiences = tuple(audiences)
        self.tokens = tuple(tokens)
        self.algorithms = frozenset(algorithms)
        self.static_keys = tuple(static_keys)
        self.jkus = tuple(jkus)
        self.require_kid = require_kid
        self.clock_skew = clock_skew
        self.required_claims = tuple(required_claims)
        self.enforce = enforce
        self.cache = JwksCache()

    # --- configuration ---------------------------------------------------------

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        issuer = config.mapping("issuer", required=True)
        assert issuer is not None
        issuers = _allow_list(issuer, required=True)
        audience = config.mapping("audience")
        audiences = _allow_list(audience, required=True) if audience is not None else []
        http = config.mapping("http", required=True)
        assert http is not None
        tokens = _tokens(http)
        jws = config.mapping("jws", required=True)
        assert jws is not None
        algorithms = jws.string_list("allowed_algorithms", required=True, min_items=1)
        assert algorithms is not None
        for alg in algorithms:
            if alg.lower() == "none":
                jws.fail("allowed_algorithms", "'none' is refused: it means an unsigned token")
            if alg not in KEY_TYPES:
                known = ", ".join(sorted(KEY_TYPES))
                jws.fail("allowed_algorithms", f"unsupported algorithm {alg!r} ({known})")
        jkus, static_keys, require_kid = _keys(jws)
        if not jkus and not static_keys:
            jws.fail("keys", "no key source: give sources.additional_jkus or sources.jwks")
        for alg in algorithms:
            if KEY_TYPES[alg] == "oct" and not any(k.key_type == "oct" for k in static_keys):
                jws.fail(
                    "allowed_algorithms",
                    f"{alg} needs a symmetric key in keys.sources.jwks "
                    "(keys from a JWKS URL are never symmetric)",
                )
        clock_skew = config.duration("clock_skew", default=60.0, minimum=0, maximum=600)
        required = config.string_list("required_claims")
        enforce = config.boolean("enforce", default=True)
        assert clock_skew is not None and enforce is not None
        return cls(
            issuers=issuers,
            audiences=audiences,
            tokens=tokens,
            algorithms=algorithms,
            static_keys=static_keys,
            jkus=jkus,
            require_kid=require_kid,
            clock_skew=clock_skew,
            required_claims=["exp"] if required is None else required,
            enforce=enforce,
        )

    # --- per request -------------------------------------------------------------

    def run(self, ctx: ActionContext) -> Generator[Effect, EffectResult, Decision | None]:
        results: list[dict[str, Any]] = []
        failure: _Reject | None = None
        presented = False
        try:
            for spec in self.tokens:
                name = ctx.render(spec.name)
                raw = yield from self._read(ctx, spec, name)
                presented = True
                obj, claims = _parse(raw)
                entry = _describe(obj, claims, spec.method, name)
                results.append(entry)
                yield from self._verify(ctx, spec, obj, claims)
                entry["verified"] = True
        except _Reject as exc:
            failure = exc
        outcome: dict[str, Any] = {"tokens": results}
        if failure is not None:
            outcome["error"] = {"code": failure.code.value, "message": failure.message}
        ctx.record("jwt_validation", outcome)
        if failure is None or not self.enforce:
            return None
        headers = []
        if failure.status == 401:
            challenge = 'Bearer error="invalid_token"' if presented else "Bearer"
            headers.append((b"www-authenticate", challenge.encode()))
        return error_decision(
            ctx,
            failure.status,
            failure.code,
            _STATUS_TEXT[failure.status],
            reason=f"jwt-validation: {failure.message}",
            headers=headers,
        )

    def _read(
        self, ctx: ActionContext, spec: TokenSpec, name: str
    ) -> Generator[Effect, EffectResult, bytes]:
        """The token's text, prefix stripped."""
        received = ctx.received
        assert received is not None
        if spec.method == "header":
            key = name.lower().encode("latin-1", "replace")
            values = [v for n, v in received.headers if n == key]
            if not values:
                raise _Reject(ErrorCode.TOKEN_MISSING, f"header {name!r} not found")
            if len(values) > 1:
                raise _Reject(
                    ErrorCode.TOKEN_MALFORMED, f"header {name!r} appears {len(values)} times"
                )
            raw = values[0].strip()
        elif spec.method == "cookie":
            raw = _cookie(received.headers, name)
        else:
            raw = yield from _body_field(ctx, received.method, received.headers, name)
        if spec.prefix is not None:
            prefix = ctx.render(spec.prefix).encode("utf-8")
            if raw.lower() == prefix.strip().lower():  # "Bearer " arrives trimmed
                raw = b""
            elif raw[: len(prefix)].lower() == prefix.lower():
                raw = raw[len(prefix) :].strip()
            else:
                raise _Reject(
                    ErrorCode.TOKEN_PREFIX_MISSING,
                    f"{spec.method} {name!r} lacks the configured prefix",
                )
        if not raw:
            raise _Reject(ErrorCode.TOKEN_MISSING, f"{spec.method} {name!r} holds no token")
        return raw

    def _verify(
        self, ctx: ActionContext, spec: TokenSpec, obj: CompactSignature, claims: dict[str, Any]
    ) -> Generator[Effect, EffectResult, None]:
        header = obj.headers()
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise _Reject(ErrorCode.UNAUTHORIZED, f"algorithm {alg!r} is not allowed")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _Reject(ErrorCode.TOKEN_MALFORMED, "the kid header is not a string")
        if kid is None and self.require_kid:
            raise _Reject(ErrorCode.UNAUTHORIZED, "the token has no kid")
        if spec.type == "at+jwt" and str(header.get("typ", "")).lower() not in (
            "at+jwt",
            "application/at+jwt",
        ):
            raise _Reject(ErrorCode.UNAUTHORIZED, "not an access token (typ is not at+jwt)")
        keys = yield from self._keys(ctx, alg, kid)
        if not any(_signed_by(obj, key, alg) for key in keys[:MAX_TRIED_KEYS]):
            why = "no key for the token's alg and kid" if not keys else "bad signature"
            raise _Reject(ErrorCode.UNAUTHORIZED, f"{why} (alg {alg}, kid {kid!r})")
        self._check_claims(ctx, claims)

    def _keys(
        self, ctx: ActionContext, alg: str, kid: str | None
    ) -> Generator[Effect, EffectResult, list[Key]]:
        """Keys for this token: the static ones, then each JWKS URL's,
        refreshed when stale or when none has the token's kid."""
        sources = [self.cache.source(ctx.render(url)) for url in self.jkus]
        for source in sources:
            if source.wants_fetch(ctx.now()):
                yield from _fetch(ctx, source)
        found = self._matching(ctx, sources, alg, kid)
        if not found and kid is not None:
            for source in sources:
                if source.wants_fetch(ctx.now(), unknown_kid=True):
                    yield from _fetch(ctx, source, unknown_kid=True)
            found = self._matching(ctx, sources, alg, kid)
        if not found and not self.static_keys:
            now = ctx.now()
            if not any(source.usable(now) for source in sources):
                why = "; ".join(s.failure or f"{s.url}: not fetched yet" for s in sources)
                raise _Reject(ErrorCode.JWKS_UNAVAILABLE, f"no usable JWKS ({why})", status=503)
        return found

    def _matching(
        self, ctx: ActionContext, sources: Sequence[JwksSource], alg: str, kid: str | None
    ) -> list[Key]:
        found = candidates(self.static_keys, alg, kid)
        now = ctx.now()
        for source in sources:
            if source.usable(now):  # too stale: not trusted any more
                found += candidates(source.keys, alg, kid)
        return found

    def _check_claims(self, ctx: ActionContext, claims: dict[str, Any]) -> None:
        options: dict[str, Any] = {c: {"essential": True} for c in self.required_claims}
        options["iss"] = {"essential": True, "values": [ctx.render(t) for t in self.issuers]}
        if self.audiences:
            options["aud"] = {"essential": True, "values": [ctx.render(t) for t in self.audiences]}
        registry = JWTClaimsRegistry(now=int(ctx.now()), leeway=int(self.clock_skew), **options)
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise _Reject(ErrorCode.UNAUTHORIZED, "the token has expired") from None
        except MissingClaimError as exc:
            raise _Reject(ErrorCode.UNAUTHORIZED, f"missing claim(s): {exc.description}") from None
        except ClaimError as exc:
            raise _Reject(ErrorCode.UNAUTHORIZED, f"invalid claim: {exc.description}") from None


def _fetch(
    ctx: ActionContext, source: JwksSource, *, unknown_kid: bool = False
) -> Generator[Effect, EffectResult, None]:
    fetch = source.request(ctx.now(), unknown_kid=unknown_kid)
    try:
        result = yield from ctx.fetch(fetch)
    except BaseException:  # the exchange was abandoned mid-fetch (GeneratorExit...)
        source.abandon()
        raise
    source.update(result, ctx.now())


def _signed_by(obj: CompactSignature, key: Key, alg: str) -> bool:
    try:
        with quiet():
            return validate_compact(obj, key, [alg])
    except (JoseError, ValueError):
        return False


def _parse(raw: bytes) -> tuple[CompactSignature, dict[str, Any]]:
    """The compact JWS and its claims (not yet verified)."""
    if raw.count(b".") != 2:
        raise _Reject(ErrorCode.TOKEN_MALFORMED, "not a compact JWS (three dot-separated parts)")
    try:
        obj = extract_compact(raw)
        claims = json.loads(obj.payload)
    except (JoseError, ValueError, TypeError):
        raise _Reject(ErrorCode.TOKEN_MALFORMED, "the token could not be parsed") from None
    if not isinstance(claims, dict):
        raise _Reject(ErrorCode.TOKEN_MALFORMED, "the payload is not a JSON object")
    header = obj.headers()
    if "b64" in header or "crit" in header:
        raise _Reject(ErrorCode.TOKEN_MALFORMED, "unsupported critical header parameters")
    return obj, claims


def _describe(
    obj: CompactSignature, claims: dict[str, Any], location: str, name: str
) -> dict[str, Any]:
    """The token as `actions.ngrok.jwt_validation.tokens[i]` shows it."""
    return {
        "header": dict(obj.headers()),
        "location": location,
        "location_property": name,
        "payload": claims,
        "signature": obj.segments["signature"].decode("ascii", "replace"),
        "verified": False,
    }


def _cookie(headers: Sequence[tuple[bytes, bytes]], name: str) -> bytes:
    for header, value in headers:
        if header != b"cookie":
            continue
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(value.decode("latin-1"))
        except CookieError:
            continue
        if name in jar:
            return jar[name].value.encode("latin-1")
    raise _Reject(ErrorCode.TOKEN_MISSING, f"cookie {name!r} not found")


def _body_field(
    ctx: ActionContext,
    method: bytes,
    headers: Sequence[tuple[bytes, bytes]],
    name: str,
) -> Generator[Effect, EffectResult, bytes]:
    if method not in BODY_METHODS:
        raise _Reject(
            ErrorCode.BODY_METHOD_UNSUPPORTED,
            f"tokens in the body are not read for {method.decode('latin-1')} requests",
        )
    content_type = next((v for n, v in headers if n == b"content-type"), b"")
    media = content_type.split(b";", 1)[0].strip().lower()
    body = yield from ctx.read_body()
    if body is None:
        raise _Reject(
            ErrorCode.BODY_TOO_LARGE,
            f"body larger than {ctx.state.policy.body_limit} bytes",
            status=413,
        )
    wanted = name.lower()
    fields: Mapping[str, Any]
    if media == b"application/json" or media.endswith(b"+json"):
        try:
            document = json.loads(body)
        except ValueError:
            raise _Reject(ErrorCode.BODY_NOT_JSON, "the body is not JSON") from None
        if not isinstance(document, dict):
            raise _Reject(ErrorCode.BODY_NOT_JSON, "the body is not a JSON object")
        fields = document
    elif media == b"application/x-www-form-urlencoded":
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
        except (UnicodeDecodeError, ValueError):
            raise _Reject(ErrorCode.BODY_NOT_FORM, "the form body does not parse") from None
        fields = {k: v[0] for k, v in form.items()}
    else:
        raise _Reject(
            ErrorCode.BODY_TYPE_UNSUPPORTED,
            "a token in the body needs a JSON or form content-type",
        )
    for key, value in fields.items():
        if key.lower() == wanted and isinstance(value, str):
            return value.strip().encode("utf-8")
    raise _Reject(ErrorCode.TOKEN_MISSING, f"body field {name!r} not found")


# --- configuration helpers ----------------------------------------------------------


def _allow_list(config: ConfigReader, *, required: bool) -> list[native.Template]:
    items = config.items("allow_list", required=required, min_items=1)
    out = []
    for path, raw in items or ():
        entry = config.reader_at(path, raw)
        value = entry.template("value", required=True)
        assert value is not None
        if value.is_constant and not constant(value):
            entry.fail("value", "an empty value allows nothing")
        out.append(value)
    return out


def _tokens(http: ConfigReader) -> list[TokenSpec]:
    items = http.items("tokens", required=True, min_items=1)
    assert items is not None
    out = []
    for path, raw in items:
        entry = http.reader_at(path, raw)
        kind = entry.string("type", required=True, choices=TOKEN_TYPES)
        if entry.value("method") == "query":
            entry.fail("method", "tokens in the URL are not supported: URLs end up in logs")
        method = entry.string("method", required=True, choices=METHODS)
        name = entry.template("name", required=True)
        prefix = entry.template("prefix")
        assert kind is not None and method is not None and name is not None
        if name.is_constant and not constant(name):
            entry.fail("name", "name is empty")
        out.append(TokenSpec(kind, method, name, prefix))
    return out


def _keys(jws: ConfigReader) -> tuple[list[native.Template], list[Key], bool]:
    """`keys` as the examples write it (`{sources: {additional_jkus: [...]}}`)
    or as the reference table does (lists of those objects, warned)."""
    keys = _one_or_many(jws, "keys")
    jkus: list[native.Template] = []
    static: list[Key] = []
    require_kid = False
    for entry in keys:
        for ident in _each(entry, "identification"):
            claims = ident.string_list("token_claims") or []
            for claim in claims:
                if claim != "kid":
                    ident.fail("token_claims", f"unsupported claim {claim!r} (only 'kid')")
            require_kid = require_kid or "kid" in claims
        for source in _one_or_many(entry, "sources"):
            for path, raw in source.items("additional_jkus") or ():
                if not isinstance(raw, str):
                    source.fail("additional_jkus", "a JWKS URL is a string")
                url = source.compile_template(path, raw)
                if url.is_constant:
                    parts = urlsplit(constant(url))
                    if parts.scheme not in ("http", "https") or not parts.netloc:
                        source.fail("additional_jkus", f"{constant(url)!r} is not an http(s) URL")
                jkus.append(url)
            static += _static_jwks(source)
    return jkus, static, require_kid


def _static_jwks(source: ConfigReader) -> list[Key]:
    """`jwks`: keys written in the policy, a list of JWKs or a JWK set."""
    raw = source.value("jwks")
    if raw is None:
        return []
    listed = raw.get("keys") if isinstance(raw, Mapping) else raw
    if not isinstance(listed, list):
        source.fail("jwks", "jwks is a list of JWKs or a JWK set ({keys: [...]})")
    keys = []
    for i, jwk in enumerate(listed):
        try:
            keys.append(import_key(jwk, symmetric=True))
        except JwksError as exc:
            source.fail("jwks", f"jwks[{i}]: {exc}")
    return keys


def _one_or_many(config: ConfigReader, key: str) -> list[ConfigReader]:
    raw = config.value(key)
    if raw is None:
        config.missing(key)
    if isinstance(raw, list):
        config.warn(key, f"{key} is written as a mapping in the public examples; prefer that")
        return [config.reader_at((*config.path, key, i), item) for i, item in enumerate(raw)]
    return [config.reader_at((*config.path, key), raw)]


def _each(config: ConfigReader, key: str) -> list[ConfigReader]:
    """A list of mappings (or one mapping), without a warning."""
    raw = config.value(key)
    if raw is None:
        return []
    if isinstance(raw, list):
        return [config.reader_at((*config.path, key, i), item) for i, item in enumerate(raw)]
    return [config.reader_at((*config.path, key), raw)]
