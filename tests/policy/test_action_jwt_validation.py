"""jwt-validation: tokens signed here with `cryptography` (not with the
library under test), keys made at test time, JWKS served from fixtures
(sans-IO) and by a real HTTP server on 127.0.0.1 (end to end)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given
from hypothesis import strategies as st
from tests.policy.e2e import BACKENDS, Handler, Reply, echo_headers, events, running_edge, serve
from tests.policy.helpers import NOW, load, load_error, request

from edgeward.hooks import Fetch, FetchResult, ReadBody
from edgeward.policy import jwks

ISSUER = "https://idp.example.com/"
JKU = "https://idp.example.com/.well-known/jwks.json"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def int_b64(n: int, size: int | None = None) -> str:
    return b64(n.to_bytes(size or (n.bit_length() + 7) // 8, "big"))


class Signer:
    """A key pair and its public JWK; `token()` signs a compact JWS."""

    def __init__(self, alg: str, kid: str | None = None) -> None:
        self.alg, self.kid = alg, kid
        jwk: dict[str, Any]
        if alg == "RS256":
            self.key: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pub = self.key.public_key().public_numbers()
            jwk = {"kty": "RSA", "n": int_b64(pub.n), "e": int_b64(pub.e)}
        elif alg == "ES256":
            self.key = ec.generate_private_key(ec.SECP256R1())
            pub = self.key.public_key().public_numbers()
            jwk = {"kty": "EC", "crv": "P-256", "x": int_b64(pub.x, 32), "y": int_b64(pub.y, 32)}
        elif alg == "EdDSA":
            self.key = ed25519.Ed25519PrivateKey.generate()
            raw = self.key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}
        else:
            assert alg == "HS256"
            self.key = hashlib.sha256(f"secret of {kid}".encode()).digest()
            jwk = {"kty": "oct", "k": b64(self.key)}
        if kid is not None:
            jwk["kid"] = kid
        self.jwk = jwk

    def sign(self, data: bytes) -> bytes:
        if self.alg == "RS256":
            return bytes(self.key.sign(data, padding.PKCS1v15(), hashes.SHA256()))
        if self.alg == "ES256":
            r, s = decode_dss_signature(self.key.sign(data, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        if self.alg == "EdDSA":
            return bytes(self.key.sign(data))
        return hmac.new(self.key, data, hashlib.sha256).digest()

    def token(self, claims: Mapping[str, Any] | None = None, **header: Any) -> str:
        head = {"alg": self.alg, "typ": "JWT", **({"kid": self.kid} if self.kid else {}), **header}
        body = {"iss": ISSUER, "aud": "api", "sub": "alice", "iat": int(NOW), "exp": int(NOW) + 300}
        body.update(claims or {})
        body = {k: v for k, v in body.items() if v is not None}
        signing_input = f"{b64(json.dumps(head).encode())}.{b64(json.dumps(body).encode())}"
        return f"{signing_input}.{b64(self.sign(signing_input.encode()))}"


RSA = Signer("RS256", "rsa-1")
EC = Signer("ES256", "ec-1")
ED = Signer("EdDSA", "ed-1")
HMAC = Signer("HS256", "hs-1")


def jwks_result(*signers: Signer, cache_control: str = "max-age=600") -> FetchResult:
    body = json.dumps({"keys": [s.jwk for s in signers]}).encode()
    return FetchResult(
        200, (("content-type", "application/json"), ("cache-control", cache_control)), body
    )


def policy(
    *,
    algorithms: str = "[RS256, ES256, EdDSA]",
    keys: str = f"{{sources: {{additional_jkus: ['{JKU}']}}}}",
    tokens: str = "[{type: jwt, method: header, name: Authorization, prefix: 'Bearer '}]",
    extra: str = "",
    then: str = "",
) -> str:
    return f"""
        on_http_request:
          - name: jwt
            actions:
              - type: jwt-validation
                config:
                  issuer: {{allow_list: [{{value: "{ISSUER}"}}, {{value: "https://other.example.com"}}]}}
                  audience: {{allow_list: [{{value: api}}, {{value: admin-api}}]}}
                  http: {{tokens: {tokens}}}
                  jws: {{allowed_algorithms: {algorithms}, keys: {keys}}}
                  {extra}
          - name: tag
            actions:
              - type: add-headers
                config:
                  headers:
                    x-sub: "${{actions.ngrok.jwt_validation.tokens[0].payload.sub}}"
        {then}
    """


def bearer(token: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {token}")]


FETCH = {JKU: jwks_result(RSA, EC, ED)}


@pytest.mark.parametrize("signer", [RSA, EC, ED], ids=lambda s: s.alg)
def test_valid_tokens_from_a_jwks(signer: Signer) -> None:
    h = load(policy())
    r = request(h, headers=bearer(signer.token()), fetch=FETCH)
    assert r.forwarded is not None and r.upstream_header("x-sub") == ["alice"]
    assert r.effects == [
        Fetch(
            JKU, headers=(("accept", "application/jwk-set+json, application/json"),), timeout_s=5.0
        )
    ]
    again = request(h, headers=bearer(signer.token({"sub": "bob"})), fetch=FETCH)
    assert again.upstream_header("x-sub") == ["bob"] and again.effects == []  # cached


def test_hs256_with_a_static_key() -> None:
    h = load(policy(algorithms="[HS256]", keys=f"{{sources: {{jwks: [{json.dumps(HMAC.jwk)}]}}}}"))
    r = request(h, headers=bearer(HMAC.token()))
    assert r.forwarded is not None and r.effects == []


def test_results_expose_the_token() -> None:
    h = load(
        policy(
            then="""
          - actions:
              - type: custom-response
                config:
                  body: "${actions.ngrok.jwt_validation.tokens[0].verified} \\
        ${actions.ngrok.jwt_validation.tokens[0].location} \\
        ${actions.ngrok.jwt_validation.tokens[0].location_property} \\
        ${actions.ngrok.jwt_validation.tokens[0].header.kid} \\
        ${actions.ngrok.jwt_validation.tokens[0].payload.aud} \\
        ${size(actions.ngrok.jwt_validation.tokens[0].signature) > 300}"
            """
        )
    )
    r = request(h, headers=bearer(RSA.token()), fetch=FETCH)
    assert r.body == b"true header Authorization rsa-1 api true"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": int(NOW) - 61}, "expired"),
        ({"nbf": int(NOW) + 61}, "not yet valid"),
        ({"iat": int(NOW) + 61}, "issued in the future"),
        ({"iss": "https://idp.example.com"}, "iss"),  # no trailing slash: not the same issuer
        ({"iss": None}, "iss"),
        ({"aud": "other-api"}, "aud"),
        ({"aud": ["x", "y"]}, "aud"),
        ({"aud": None}, "aud"),
        ({"exp": None}, "exp"),  # required by default
        ({"exp": "tomorrow"}, "exp"),
    ],
)
def test_claims_are_checked(claims: dict[str, Any], reason: str) -> None:
    h = load(policy())
    r = request(h, headers=bearer(RSA.token(claims)), fetch=FETCH)
    assert r.status == 401 and r.forwarded is None
    assert r.header("www-authenticate") == ['Bearer error="invalid_token"']
    (event,) = h.events
    assert event.error_code == "ERR_EDGEWARD_3401" and reason in event.reason, event.reason


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(NOW) - 59, "nbf": int(NOW) + 59, "iat": int(NOW) + 59},  # within the skew
        {"aud": ["x", "admin-api"]},
        {"iss": "https://other.example.com"},
    ],
)
def test_accepted_claims(claims: dict[str, Any]) -> None:
    h = load(policy())
    assert request(h, headers=bearer(RSA.token(claims)), fetch=FETCH).forwarded is not None


def test_clock_skew_and_required_claims_are_configurable() -> None:
    h = load(policy(extra="clock_skew: 0s\n                  required_claims: [sub, email]"))
    assert request(h, headers=bearer(RSA.token({"exp": int(NOW) - 1})), fetch=FETCH).status == 401
    assert request(h, headers=bearer(RSA.token()), fetch=FETCH).status == 401  # no email
    ok = RSA.token({"email": "a@example.com", "exp": None})  # exp no longer required
    assert request(h, headers=bearer(ok), fetch=FETCH).forwarded is not None


def test_algorithm_must_be_allowed() -> None:
    h = load(policy(algorithms="[RS256]"))
    r = request(h, headers=bearer(EC.token()), fetch=FETCH)
    assert r.status == 401 and "algorithm 'ES256' is not allowed" in h.events[0].reason


def test_alg_none_is_refused() -> None:
    h = load(policy())
    unsigned = RSA.token().rsplit(".", 1)[0].split(".")
    head = b64(json.dumps({"alg": "none", "kid": "rsa-1"}).encode())
    r = request(h, headers=bearer(f"{head}.{unsigned[1]}."), fetch=FETCH)
    assert r.status == 401 and r.forwarded is None


def test_no_algorithm_confusion_with_an_rsa_public_key_as_hmac_secret() -> None:
    """The classic attack: HS256 "signed" with the server's RSA public key."""
    h = load(
        policy(
            algorithms="[RS256, HS256]",
            keys=f"{{sources: {{additional_jkus: ['{JKU}'], jwks: [{json.dumps(HMAC.jwk)}]}}}}",
        )
    )
    public_pem = RSA.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for secret in (
        public_pem,
        json.dumps(RSA.jwk).encode(),
        base64.urlsafe_b64decode(RSA.jwk["n"] + "=="),
    ):
        forged = Signer("HS256", "rsa-1")
        forged.key = secret
        r = request(h, headers=bearer(forged.token()), fetch=FETCH)
        assert r.status == 401 and r.forwarded is None
    assert request(h, headers=bearer(HMAC.token()), fetch=FETCH).forwarded is not None


def test_symmetric_keys_from_a_url_are_ignored() -> None:
    h = load(
        policy(
            algorithms="[HS256]",
            keys=f"{{sources: {{additional_jkus: ['{JKU}'], jwks: [{json.dumps(HMAC.jwk)}]}}}}",
        )
    )
    published = Signer("HS256", "published")
    r = request(h, headers=bearer(published.token()), fetch={JKU: jwks_result(published)})
    assert r.status == 401


def test_a_key_embedded_in_the_token_is_never_used() -> None:
    h = load(policy())
    attacker = Signer("ES256", "ec-1")  # same kid as the real key, other key material
    r = request(h, headers=bearer(attacker.token(jwk=attacker.jwk)), fetch=FETCH)
    assert r.status == 401 and "bad signature" in h.events[0].reason


def test_tampered_token() -> None:
    h = load(policy())
    head, _, signature = RSA.token().split(".")
    evil = b64(
        json.dumps({"iss": ISSUER, "aud": "api", "sub": "root", "exp": int(NOW) + 300}).encode()
    )
    r = request(h, headers=bearer(f"{head}.{evil}.{signature}"), fetch=FETCH)
    assert r.status == 401 and r.forwarded is None
    assert "root" not in "".join(e.to_json() for e in h.events)
    assert signature not in "".join(e.to_json() for e in h.events)  # tokens never logged


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ([], "ERR_EDGEWARD_3406"),
        ([("Authorization", "Token abc")], "ERR_EDGEWARD_3413"),
        ([("Authorization", "Bearer ")], "ERR_EDGEWARD_3406"),
        ([("Authorization", "Bearer not-a-jwt")], "ERR_EDGEWARD_3416"),
        ([("Authorization", "Bearer a.b.c")], "ERR_EDGEWARD_3416"),
        ([("Authorization", "Bearer x"), ("Authorization", "Bearer y")], "ERR_EDGEWARD_3416"),
    ],
)
def test_missing_or_malformed_tokens(headers: list[tuple[str, str]], code: str) -> None:
    h = load(policy())
    r = request(h, headers=headers, fetch=FETCH)
    assert r.status == 401 and h.events[0].error_code == code
    assert r.header("www-authenticate")[0].startswith("Bearer")


def test_prefix_is_case_insensitive() -> None:
    h = load(policy())
    assert request(h, headers=[("authorization", "bearer " + RSA.token())], fetch=FETCH).forwarded


def test_unknown_kid_refreshes_once_per_interval() -> None:
    h = load(policy())
    rotated = Signer("RS256", "rsa-2")
    assert request(h, headers=bearer(RSA.token()), fetch={JKU: jwks_result(RSA)}).forwarded
    h.now += 10
    r = request(h, headers=bearer(rotated.token()), fetch={JKU: jwks_result(RSA, rotated)})
    assert r.forwarded is not None and len(r.effects) == 1  # refreshed: the new kid is there
    for i in range(20):  # an attacker's random kids: no more fetches for a while
        r = request(h, headers=bearer(Signer("ES256", f"random-{i}").token()), fetch=FETCH)
        assert r.status == 401 and r.effects == []
    h.now += jwks.REFRESH_INTERVAL
    r = request(h, headers=bearer(Signer("ES256", "random").token()), fetch=FETCH)
    assert r.status == 401 and len(r.effects) == 1


def test_cache_control_sets_the_lifetime() -> None:
    h = load(policy())
    short = {JKU: jwks_result(RSA, cache_control="public, max-age=120")}
    assert len(request(h, headers=bearer(RSA.token()), fetch=short).effects) == 1
    h.now += 119
    assert request(h, headers=bearer(RSA.token()), fetch=short).effects == []
    h.now += 1
    assert len(request(h, headers=bearer(RSA.token()), fetch=short).effects) == 1


@pytest.mark.parametrize(
    ("headers", "ttl"),
    [
        ((), jwks.DEFAULT_TTL),
        ((("cache-control", "max-age=5"),), jwks.MIN_TTL),
        ((("cache-control", "max-age=999999"),), jwks.MAX_TTL),
        ((("cache-control", "no-store"),), jwks.MIN_TTL),
        ((("Cache-Control", 'private, max-age="300"'),), 300.0),
    ],
)
def test_cache_ttl_is_bounded(headers: tuple[tuple[str, str], ...], ttl: float) -> None:
    assert jwks.cache_ttl(headers) == ttl


@pytest.mark.parametrize(
    "failure",
    [
        FetchResult(0, error="connection refused"),
        FetchResult(500, body=b"oops"),
        FetchResult(200, body=b"<html>"),
        FetchResult(
            200, body=b'{"keys": [{"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}'
        ),
    ],
)
def test_no_jwks_fails_closed(failure: FetchResult) -> None:
    h = load(policy())
    r = request(h, headers=bearer(RSA.token()), fetch={JKU: failure})
    assert r.status == 503 and r.forwarded is None
    assert h.events[0].error_code == "ERR_EDGEWARD_3422"
    assert request(h, headers=bearer(RSA.token()), fetch=FETCH).effects == []  # backing off
    h.now += jwks.RETRY_INTERVAL
    assert request(h, headers=bearer(RSA.token()), fetch=FETCH).forwarded is not None


def test_stale_keys_serve_while_the_jwks_server_is_down() -> None:
    h = load(policy())
    assert request(h, headers=bearer(RSA.token()), fetch=FETCH).forwarded
    down = {JKU: FetchResult(0, error="timed out")}
    h.now += 600 + 1  # expired: a refresh is attempted and fails
    r = request(h, headers=bearer(RSA.token({"exp": int(h.now) + 60})), fetch=down)
    assert r.forwarded is not None and len(r.effects) == 1
    h.now += jwks.STALE_GRACE
    r = request(h, headers=bearer(RSA.token({"exp": int(h.now) + 60})), fetch=down)
    assert r.status == 503  # too old to trust any longer


def test_abandoned_fetch_is_not_left_in_flight() -> None:
    h = load(policy())
    from tests.policy.helpers import ENDPOINT, conn

    from edgeward.hooks import RequestHead

    for _ in range(jwks.COLD_INFLIGHT + 1):
        head = RequestHead(
            b"GET",
            b"/",
            b"a",
            b"https",
            [(b"authorization", b"Bearer " + RSA.token().encode())],
            b"1.1",
        )
        gen = h.policy.begin(conn(), ENDPOINT, head, "r").on_http_request(head)
        assert isinstance(gen.send(None), Fetch)
        gen.close()  # the client went away mid-fetch
    assert len(request(h, headers=bearer(RSA.token()), fetch=FETCH).effects) == 1


BODY_TOKENS = "[{type: id_token, method: body, name: id_token}]"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", lambda t: json.dumps({"ID_Token": t, "x": 1})),
        ("application/x-www-form-urlencoded; charset=utf-8", lambda t: f"a=1&id_token={t}"),
    ],
)
def test_token_in_the_body(content_type: str, body: Any) -> None:
    h = load(policy(tokens=BODY_TOKENS))
    data = body(RSA.token()).encode()
    r = request(h, method="POST", headers=[("content-type", content_type)], body=data, fetch=FETCH)
    assert r.forwarded is not None and r.forwarded.body == data  # forwarded byte for byte
    assert r.effects[0] == ReadBody(1024 * 1024)


@pytest.mark.parametrize(
    ("method", "content_type", "body", "code", "status"),
    [
        ("GET", "application/json", b"{}", "ERR_EDGEWARD_3415", 401),
        ("POST", "application/json", b"{not json", "ERR_EDGEWARD_3411", 401),
        ("POST", "application/json", b"[1]", "ERR_EDGEWARD_3411", 401),
        ("POST", "application/x-www-form-urlencoded", b"a=%zz&&=", "ERR_EDGEWARD_3412", 401),
        ("POST", "text/plain", b"id_token=x", "ERR_EDGEWARD_3414", 401),
        ("PUT", "application/json", b'{"other": 1}', "ERR_EDGEWARD_3406", 401),
        ("POST", "application/json", b"x" * (1024 * 1024 + 1), "ERR_EDGEWARD_3905", 413),
    ],
)
def test_body_token_failures(
    method: str, content_type: str, body: bytes, code: str, status: int
) -> None:
    h = load(policy(tokens=BODY_TOKENS))
    r = request(h, method=method, headers=[("content-type", content_type)], body=body, fetch=FETCH)
    assert r.status == status and h.events[0].error_code == code


def test_token_in_a_cookie() -> None:
    h = load(policy(tokens="[{type: jwt, method: cookie, name: session}]"))
    r = request(h, headers=[("cookie", f"theme=dark; session={RSA.token()}")], fetch=FETCH)
    assert r.forwarded is not None
    assert request(h, headers=[("cookie", "theme=dark")], fetch=FETCH).status == 401


def test_every_listed_token_is_required() -> None:
    h = load(
        policy(
            tokens="[{type: access_token, method: header, name: Authorization, prefix: 'Bearer '},"
            " {type: id_token, method: header, name: X-Id-Token}]"
        )
    )
    assert request(h, headers=bearer(RSA.token()), fetch=FETCH).status == 401
    both = [*bearer(RSA.token()), ("x-id-token", EC.token({"sub": "alice-id"}))]
    assert request(h, headers=both, fetch=FETCH).forwarded is not None


def test_access_tokens_of_type_at_jwt_need_that_typ() -> None:
    h = load(
        policy(tokens="[{type: at+jwt, method: header, name: Authorization, prefix: 'Bearer '}]")
    )
    assert request(h, headers=bearer(RSA.token()), fetch=FETCH).status == 401  # typ JWT
    assert request(h, headers=bearer(RSA.token(typ="at+jwt")), fetch=FETCH).forwarded is not None


def test_identification_by_kid_requires_one() -> None:
    keys = f"{{identification: [{{token_claims: [kid]}}], sources: {{additional_jkus: ['{JKU}']}}}}"
    h = load(policy(keys=keys))
    no_kid = Signer("RS256")
    no_kid.key = RSA.key
    assert request(h, headers=bearer(no_kid.token()), fetch=FETCH).status == 401
    assert request(load(policy()), headers=bearer(no_kid.token()), fetch=FETCH).forwarded  # tried


def test_enforce_false_lets_later_rules_decide() -> None:
    h = load(
        policy(
            extra="enforce: false",
            then="""
          - expressions: ["!actions.ngrok.jwt_validation.tokens.exists(t, t.verified)"]
            actions:
              - type: custom-response
                config:
                  status_code: 200
                  body: "anonymous: ${actions.ngrok.jwt_validation.error.code}"
            """,
        ).replace('x-sub: "${actions.ngrok.jwt_validation.tokens[0].payload.sub}"', "x-a: b")
    )
    assert request(h, fetch=FETCH).body == b"anonymous: ERR_EDGEWARD_3406"
    assert request(h, headers=bearer(RSA.token()), fetch=FETCH).forwarded is not None


def test_keys_as_lists_are_accepted_with_a_warning() -> None:
    h = load(policy(keys=f"[{{sources: [{{additional_jkus: ['{JKU}']}}]}}]"))
    warned = [w.message for w in h.policy.warnings]
    assert any(m.startswith("keys is written as a mapping") for m in warned)
    assert any(m.startswith("sources is written as a mapping") for m in warned)
    assert request(h, headers=bearer(RSA.token()), fetch=FETCH).forwarded is not None


def test_an_interpolated_jwks_url() -> None:
    h = load(policy(keys="{sources: {additional_jkus: ['https://${endpoint.host}/jwks']}}"))
    r = request(
        h, headers=bearer(RSA.token()), fetch={"https://app.example.com/jwks": jwks_result(RSA)}
    )
    assert r.forwarded is not None


SMALL_RSA = rsa.generate_private_key(public_exponent=65537, key_size=1024)
SMALL_N = int_b64(SMALL_RSA.public_key().public_numbers().n)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"algorithms": "[none]"}, "'none' is refused"),
        ({"algorithms": "[RS256, NONE]"}, "'none' is refused"),
        ({"algorithms": "[RS1]"}, "unsupported algorithm 'RS1'"),
        ({"algorithms": "[]"}, "at least 1"),
        ({"algorithms": "[HS256]"}, "HS256 needs a symmetric key"),
        ({"keys": "{sources: {additional_jkus: ['$JWT_PUBLIC_KEY_URL']}}"}, "not an http(s) URL"),
        ({"keys": "{sources: {}}"}, "no key source"),
        ({"keys": "{identification: [{token_claims: [sub]}], sources: {jwks: []}}"}, "only 'kid'"),
        (
            {"keys": f"{{sources: {{jwks: [{{kty: RSA, n: '{SMALL_N}', e: AQAB}}]}}}}"},
            "at least 2048",
        ),
        ({"keys": "{sources: {jwks: [{kty: oct, k: c2hvcnQ}]}}"}, "at least 32"),
        ({"keys": "{sources: {jwks: [{kty: RSA, n: x}]}}"}, "jwks[0]"),
        ({"tokens": "[{type: jwt, method: query, name: token}]"}, "URLs end up in logs"),
        ({"tokens": "[{type: saml, method: header, name: x}]"}, "type must be one of"),
        ({"tokens": "[{type: jwt, method: header}]"}, "missing required field 'name'"),
        ({"tokens": "[]"}, "at least 1"),
        ({"extra": "clock_skew: 1h"}, "at most 600"),
        ({"extra": "leeway: 5s"}, "unknown field 'leeway'"),
    ],
)
def test_load_errors(kwargs: dict[str, str], message: str) -> None:
    err = load_error(policy(**kwargs))
    assert message in str(err), str(err)
    assert "policy.yml:" in str(err)


def test_issuer_is_required() -> None:
    text = policy().replace(
        f'issuer: {{allow_list: [{{value: "{ISSUER}"}}, {{value: "https://other.example.com"}}]}}',
        "",
    )
    assert "missing required field 'issuer'" in str(load_error(text))
    assert "at least 1" in str(
        load_error(
            policy().replace(f'{{value: "{ISSUER}"}}, {{value: "https://other.example.com"}}', "")
        )
    )


# --- end to end: a real JWKS server and the running edge ------------------------------------


class JwksServer:
    def __init__(self) -> None:
        self.keys: list[Signer] = [RSA]
        self.lock = threading.Lock()

    def route(self, handler: Handler) -> Reply:
        with self.lock:
            body = json.dumps({"keys": [s.jwk for s in self.keys]}).encode()
        return (
            200,
            [("content-type", "application/jwk-set+json"), ("cache-control", "max-age=3600")],
            body,
        )


def e2e_policy(jku: str) -> str:
    return f"""
on_http_request:
  - actions:
      - type: jwt-validation
        config:
          issuer: {{allow_list: [{{value: "{ISSUER}"}}]}}
          audience: {{allow_list: [{{value: api}}]}}
          http: {{tokens: [{{type: jwt, method: header, name: Authorization, prefix: "Bearer "}}]}}
          jws:
            allowed_algorithms: [RS256, ES256]
            keys: {{sources: {{additional_jkus: ["{jku}"]}}}}
      - type: add-headers
        config:
          headers: {{x-sub: "${{actions.ngrok.jwt_validation.tokens[0].payload.sub}}"}}
"""


@pytest.fixture(scope="module", params=BACKENDS)
def setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    if request.param == "rust":
        pytest.importorskip("edgeward_native")
    keys = JwksServer()
    with serve({"/headers": echo_headers}) as upstream, serve({"/jwks": keys.route}) as idp:
        directory = tmp_path_factory.mktemp(f"jwt-{request.param}")
        with running_edge(
            directory, e2e_policy(f"{idp.url}/jwks"), upstream.url, request.param
        ) as edge:
            yield edge, idp, keys


def test_edge_validates_caches_and_refreshes(setup: Any) -> None:
    import time

    edge, idp, keys = setup
    url = edge.url("/headers")
    now = int(time.time())

    def token(signer: Signer, **claims: Any) -> str:
        return signer.token({"iat": now, "exp": now + 300, **claims})

    with httpx.Client(timeout=10) as client:
        ok = client.get(url, headers={"authorization": f"Bearer {token(RSA, sub='carol')}"})
        assert ok.status_code == 200 and dict(ok.json()["headers"])["x-sub"] == "carol"
        for _ in range(5):
            assert (
                client.get(url, headers={"authorization": f"Bearer {token(RSA)}"}).status_code
                == 200
            )
        assert idp.hits["/jwks"] == 1  # cached (max-age=3600)

        missing = client.get(url)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert missing.headers["edgeward-error"] == "ERR_EDGEWARD_3406"
        expired = client.get(url, headers={"authorization": f"Bearer {token(RSA, exp=now - 3600)}"})
        assert expired.status_code == 401

        with keys.lock:
            keys.keys = [RSA, EC]  # the IdP adds a key
        rotated = client.get(url, headers={"authorization": f"Bearer {token(EC, sub='dave')}"})
        assert rotated.status_code == 200 and dict(rotated.json()["headers"])["x-sub"] == "dave"
        assert idp.hits["/jwks"] == 2  # refreshed for the unknown kid

        for i in range(10):  # random kids: refused without hammering the IdP
            forged = Signer("ES256", f"random-{i}")
            forged.key = EC.key
            assert (
                client.get(url, headers={"authorization": f"Bearer {token(forged)}"}).status_code
                == 401
            )
        assert idp.hits["/jwks"] == 2

    logged = events(edge)
    assert {e["error_code"] for e in logged} == {"ERR_EDGEWARD_3406", "ERR_EDGEWARD_3401"}
    assert RSA.token().split(".")[0] not in edge.log_text()  # no token in the log


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


HOSTILE = load(
    policy(
        algorithms="[RS256, ES256, EdDSA, HS256]",
        keys=f"{{sources: {{additional_jkus: ['{JKU}'], jwks: [{json.dumps(HMAC.jwk)}]}}}}",
    )
)


@given(
    header=st.dictionaries(
        st.sampled_from(["alg", "kid", "typ", "crit", "b64", "jwk"]), json_values
    ),
    claims=st.dictionaries(
        st.sampled_from(["iss", "aud", "exp", "nbf", "iat", "sub"]), json_values
    ),
    signature=st.binary(max_size=300),
)
def test_hostile_tokens_are_refused_never_crash(
    header: dict[str, Any], claims: dict[str, Any], signature: bytes
) -> None:
    h = HOSTILE
    token = ".".join(
        b64(part) for part in (json.dumps(header).encode(), json.dumps(claims).encode(), signature)
    )
    r = request(h, headers=bearer(token), fetch=FETCH)
    assert r.status == 401 and r.forwarded is None
