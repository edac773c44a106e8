"""The login flow as a sans-IO state machine: requests in, replies and
effects out, a fake OpenID Provider answering the `Fetch` effects in
process (its ID tokens signed with a joserfc key), the clock driven by
the test."""

from __future__ import annotations

import json
import time
from collections.abc import Generator
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

from hypothesis import given
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import RSAKey

from edgeward.hooks import Fetch, FetchResult
from edgeward.identity import Client, Credentials, Request, Runtime, SessionOptions
from edgeward.identity.flow import auth_host, client_key, guard, safe_path
from edgeward.identity.seal import Keyring
from edgeward.identity.store import MemoryStore

ISSUER = "https://idp.example"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
LOCATIONS: list[str] = []


class FakeProvider:
    def __init__(self) -> None:
        self.codes: dict[str, dict[str, Any]] = {}
        self.claims = {"sub": "u1", "email": "a@example.com", "amr": ["pwd", "otp", "mfa"]}
        self.nonce_override: str | None = None

    def answer(self, fetch: Fetch) -> FetchResult:
        url = urlsplit(fetch.url)
        if url.path == "/.well-known/openid-configuration":
            return self._json(
                {
                    "issuer": ISSUER,
                    "authorization_endpoint": ISSUER + "/authorize",
                    "token_endpoint": ISSUER + "/token",
                    "jwks_uri": ISSUER + "/jwks",
                    "userinfo_endpoint": ISSUER + "/userinfo",
                    "id_token_signing_alg_values_supported": ["RS256"],
                }
            )
        if url.path == "/jwks":
            return self._json({"keys": [KEY.as_dict(private=False)]})
        if url.path == "/token":
            form = {k: v[0] for k, v in parse_qs(fetch.body.decode()).items()}
            grant = self.codes.pop(form.get("code", ""), None)
            if grant is None:
                return FetchResult(400, (), b'{"error": "invalid_grant"}')
            now = int(time.time())
            claims = {
                **self.claims,
                "iss": ISSUER,
                "aud": "cid",
                "iat": now,
                "exp": now + 300,
                "nonce": self.nonce_override or grant["nonce"],
            }
            token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, KEY)
            return self._json({"access_token": "at", "id_token": token, "expires_in": 300})
        if url.path == "/userinfo":
            return self._json({"sub": "u1", "name": "Ann", "groups": ["dev"]})
        return FetchResult(404)

    @staticmethod
    def _json(data: Any) -> FetchResult:
        return FetchResult(200, (), json.dumps(data).encode())


def run(gen: Generator[Any, Any, Any], idp: FakeProvider) -> Any:
    try:
        effect = gen.send(None)
        while True:
            assert isinstance(effect, Fetch)
            effect = gen.send(idp.answer(effect))
    except StopIteration as stop:
        return stop.value


def setup() -> tuple[Runtime, Client, FakeProvider]:
    rt = Runtime(auth_host="auth.example", keyring=Keyring.generate(), store=MemoryStore())
    client = rt.register(
        Client(
            key=client_key("t"),
            kind="oidc",
            credentials=lambda: Credentials("cid", "secret"),
            scopes=("openid", "email"),
            authz_params={},
            discovery=rt.discovery(ISSUER, allow_insecure_loopback=False),
        )
    )
    return rt, client, FakeProvider()


class Jar:
    def __init__(self) -> None:
        self.cookies: dict[tuple[str, str], str] = {}

    def take(self, host: str, headers: list[tuple[bytes, bytes]]) -> None:
        for name, value in headers:
            if name == b"set-cookie":
                k, _, rest = value.decode().partition("=")
                v = rest.split(";")[0]
                if "Max-Age=0" in value.decode():
                    self.cookies.pop((host, k), None)
                else:
                    self.cookies[(host, k)] = v

    def header(self, host: str) -> list[tuple[bytes, bytes]]:
        pairs = [f"{k}={v}" for (h, k), v in self.cookies.items() if h == host]
        return [(b"cookie", "; ".join(pairs).encode())] if pairs else []


def request(url: str, jar: Jar) -> Request:
    parts = urlsplit(url)
    target = parts.path + ("?" + parts.query if parts.query else "")
    return Request("GET", target, parts.netloc, "https", jar.header(parts.netloc))


def login(rt: Runtime, client: Client, idp: FakeProvider, jar: Jar, url: str) -> Any:
    """Drive one request through the whole flow; the final outcome."""
    opts = SessionOptions()
    outcome = run(guard(rt, client, opts, request(url, jar), time.time()), idp)
    for _ in range(6):
        if outcome.reply is None:
            return outcome
        reply = outcome.reply
        host = urlsplit(url).netloc
        jar.take(host, reply.headers)
        if reply.status != 302:
            return outcome
        url = urljoin(url, dict(reply.headers)[b"location"].decode())
        LOCATIONS.append(url)
        parts = urlsplit(url)
        if parts.netloc == "auth.example":
            reply = run(auth_host(rt, request(url, jar)), idp)
            jar.take("auth.example", reply.headers)
            location = dict(reply.headers).get(b"location", b"").decode()
            if location.startswith(ISSUER + "/authorize"):
                query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
                assert query["code_challenge_method"] == "S256" and query["redirect_uri"] == (
                    "https://auth.example/oauth2/callback"
                )
                idp.codes["c1"] = {"nonce": query["nonce"]}
                callback = f"https://auth.example/oauth2/callback?code=c1&state={query['state']}"
                reply = run(auth_host(rt, request(callback, jar)), idp)
                jar.take("auth.example", reply.headers)
                location = dict(reply.headers).get(b"location", b"").decode()
            if reply.status != 302:
                return reply
            url = location
            LOCATIONS.append(url)
        outcome = run(guard(rt, client, opts, request(url, jar), time.time()), idp)
    raise AssertionError("the flow did not settle")


def test_a_whole_login_with_claims() -> None:
    rt, client, idp = setup()
    jar = Jar()
    LOCATIONS.clear()
    outcome = login(rt, client, idp, jar, "https://app.example/report?q=1")
    assert LOCATIONS[-1] == "https://app.example/report?q=1"  # back where the user was going
    assert any("/ngrok/handoff?code=" in url for url in LOCATIONS)
    again = outcome
    session = again.session
    assert session.identity.email == "a@example.com" and session.identity.name == "Ann"
    assert "mfa" in session.identity.claims["amr"] and session.identity.claims["groups"] == ["dev"]


def test_a_wrong_id_token_nonce_is_refused() -> None:
    rt, client, idp = setup()
    idp.nonce_override = "someone-else's"
    reply = login(rt, client, idp, Jar(), "https://app.example/")
    assert reply.status == 401 and reply.error_code == "ERR_EDGEWARD_3443"


def test_no_cookie_means_a_login_redirect_and_a_nonce_cookie() -> None:
    rt, client, idp = setup()
    outcome = run(
        guard(rt, client, SessionOptions(), request("https://app.example/a", Jar()), 0.0), idp
    )
    headers = dict(outcome.reply.headers)
    assert outcome.reply.status == 302
    assert headers[b"location"].startswith(b"https://auth.example/oauth2/start?t=")
    assert headers[b"set-cookie"].startswith(b"__Host-nonce=")


@given(st.text(max_size=40))
def test_return_paths_never_leave_the_host(path: str) -> None:
    safe = safe_path(path)
    assert safe.startswith("/") and not safe.startswith("//") and "\\" not in safe
    assert urlsplit("https://app.example" + safe).netloc == "app.example"
