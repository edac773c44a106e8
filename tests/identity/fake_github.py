"""A local server speaking GitHub's documented OAuth app API shape: the
authorize page (it approves at once as `current` user), the token endpoint
(form in, JSON out, errors as 200 + `error`), `/user`, `/user/emails`,
`/user/orgs` with Bearer tokens. It checks what GitHub checks: the client
credentials, the redirect URI, the code (single use) and the PKCE
verifier."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from tests.policy.e2e import Handler, Reply, Server, serve

USERS = {
    "john": {
        "id": 1001,
        "login": "john",
        "name": "John External",
        "emails": [
            {"email": "john@external.com", "primary": True, "verified": True},
            {"email": "j@old.example.com", "primary": False, "verified": False},
        ],
        "orgs": ["acme"],
    },
    "dev": {
        "id": 1002,
        "login": "dev",
        "name": "",
        "emails": [{"email": "dev@example.com", "primary": True, "verified": True}],
        "orgs": [],
    },
    "eve": {
        "id": 1003,
        "login": "eve",
        "name": "Eve",
        "emails": [
            {"email": "eve@elsewhere.test", "primary": True, "verified": True},
            {"email": "eve@example.com", "primary": False, "verified": False},
        ],
        "orgs": [],
    },
}


@dataclass
class FakeGitHub:
    server: Server
    client_id: str = "Iv1.testclient"
    client_secret: str = "gh-secret"
    redirect_uri: str = ""
    current: str = "john"
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url


def _json(status: int, data: Any) -> Reply:
    return status, [("content-type", "application/json")], json.dumps(data).encode()


@contextlib.contextmanager
def running_github() -> Iterator[FakeGitHub]:
    fake: FakeGitHub

    def authorize(h: Handler) -> Reply:
        q = h.query
        if q.get("client_id") != fake.client_id or q.get("redirect_uri") != fake.redirect_uri:
            return 400, [], b"bad client or redirect_uri\n"
        code = secrets.token_urlsafe(16)
        fake.codes[code] = {
            "user": fake.current,
            "challenge": q.get("code_challenge"),
            "scope": q.get("scope", ""),
        }
        location = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"]})
        return 302, [("location", location)], b""

    def token(h: Handler) -> Reply:
        form = {k: v[0] for k, v in parse_qs(h.body.decode()).items()}
        if (
            form.get("client_id") != fake.client_id
            or form.get("client_secret") != fake.client_secret
        ):
            return _json(200, {"error": "incorrect_client_credentials"})
        grant = fake.codes.pop(form.get("code", ""), None)
        if grant is None or form.get("redirect_uri") != fake.redirect_uri:
            return _json(200, {"error": "bad_verification_code"})
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["challenge"]:
            return _json(200, {"error": "bad_verification_code"})
        access = "gho_" + secrets.token_urlsafe(20)
        fake.tokens[access] = grant["user"]
        return _json(200, {"access_token": access, "token_type": "bearer", "scope": grant["scope"]})

    def user_of(h: Handler) -> dict[str, Any] | None:
        auth = h.headers.get("authorization", "")
        login = fake.tokens.get(auth.removeprefix("Bearer "))
        return USERS[login] if login else None

    def api(path: str) -> Any:
        def route(h: Handler) -> Reply:
            user = user_of(h)
            if user is None:
                return _json(401, {"message": "Bad credentials"})
            if path == "/user":
                return _json(200, {k: user[k] for k in ("id", "login", "name")})
            if path == "/user/emails":
                return _json(200, [{**e, "visibility": None} for e in user["emails"]])
            return _json(200, [{"login": o, "id": i} for i, o in enumerate(user["orgs"])])

        return route

    routes = {
        "/login/oauth/authorize": authorize,
        "/login/oauth/access_token": token,
        "/user": api("/user"),
        "/user/emails": api("/user/emails"),
        "/user/orgs": api("/user/orgs"),
    }
    with serve(routes) as server:
        fake = FakeGitHub(server)
        yield fake
