"""The `oauth` action's providers: each one's documented endpoints,
minimum scopes and user API, turned into an `Identity`.

Base URLs can be replaced from the edge config
(`identity.providers.<name>: {web: ..., api: ...}`), which is how the tests
point an adapter at a local server speaking the provider's API shape.

Per provider: authorize and token endpoints (web base), user API (api
base), minimum scopes.

- amazon: www.amazon.com/ap/oa, api.amazon.com/auth/o2/token;
  api.amazon.com/user/profile; `profile`
- facebook: www.facebook.com/v19.0/dialog/oauth,
  graph.facebook.com/v19.0/oauth/access_token; graph.facebook.com/v19.0/me;
  `email`, `public_profile`
- github: github.com/login/oauth/{authorize,access_token}; api.github.com
  /user, /user/emails (the primary verified address), /user/orgs (claim
  `orgs`); `read:user`, `user:email`, `read:org`
- gitlab: gitlab.com/oauth/{authorize,token}; gitlab.com/api/v4/user;
  `read_user`
- google: accounts.google.com/o/oauth2/v2/auth, oauth2.googleapis.com/token;
  openidconnect.googleapis.com/v1/userinfo; `userinfo.email`,
  `userinfo.profile`
- linkedin: www.linkedin.com/oauth/v2/{authorization,accessToken};
  api.linkedin.com/v2/userinfo; `openid`, `profile`, `email`
- microsoft: login.microsoftonline.com/common/oauth2/v2.0/{authorize,token};
  graph.microsoft.com/v1.0/me; `openid`, `profile`, `email`, `User.Read`
- twitch: id.twitch.tv/oauth2/{authorize,token}; api.twitch.tv/helix/users;
  `user:read:email`

An address the provider has not verified is never the identity's email
(an email-domain rule must not be passed with an unverified address).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgeward.hooks import Effect, EffectResult
from edgeward.identity.http import ProviderError, get_json

Op = Generator[Effect, EffectResult, Any]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who logged in, as the provider says."""

    provider_user_id: str
    email: str = ""
    name: str = ""
    provider_session_id: str = ""
    claims: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "sub": self.provider_user_id,
            "email": self.email,
            "name": self.name,
            "sid": self.provider_session_id,
            "claims": dict(self.claims),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Identity:
        return cls(
            str(data.get("sub", "")),
            str(data.get("email", "")),
            str(data.get("name", "")),
            str(data.get("sid", "")),
            dict(data.get("claims") or {}),
        )


@dataclass(frozen=True, slots=True)
class Bases:
    web: str  # authorize and token endpoints
    api: str  # user APIs


UserFetch = Callable[[Bases, str, str], Op]
"""(bases, access token, client id) -> an Identity, fetching what it needs."""


@dataclass(frozen=True, slots=True)
class Adapter:
    name: str
    bases: Bases
    authorize_path: str
    token_path: str
    scopes: tuple[str, ...]
    user: UserFetch
    # How the token endpoint wants the client's credentials.
    token_auth: str = "client_secret_post"
    scope_separator: str = " "

    def with_bases(self, web: str | None, api: str | None) -> Adapter:
        from dataclasses import replace

        bases = Bases((web or self.bases.web).rstrip("/"), (api or self.bases.api).rstrip("/"))
        return replace(self, bases=bases)

    @property
    def authorize_url(self) -> str:
        return self.bases.web + self.authorize_path


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _object(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ProviderError(f"{what}: the answer is not a JSON object")
    return data


def _github(bases: Bases, token: str, client_id: str) -> Op:
    headers = (
        *_bearer(token),
        ("accept", "application/vnd.github+json"),
        ("x-github-api-version", "2022-11-28"),
    )
    user = _object(
        (yield from get_json(bases.api + "/user", headers, what="GitHub /user")), "/user"
    )
    emails = yield from get_json(bases.api + "/user/emails", headers, what="GitHub /user/emails")
    email = ""
    verified: list[str] = []
    for entry in emails if isinstance(emails, list) else []:
        if isinstance(entry, Mapping) and entry.get("verified") and entry.get("email"):
            verified.append(str(entry["email"]))
            if entry.get("primary"):
                email = str(entry["email"])
    orgs = yield from get_json(bases.api + "/user/orgs", headers, what="GitHub /user/orgs")
    org_names = [
        str(o["login"]) for o in (orgs if isinstance(orgs, list) else []) if isinstance(o, Mapping)
    ]
    if user.get("id") is None:
        raise ProviderError("GitHub /user: no id")
    claims = {
        "login": _text(user.get("login")),
        "orgs": org_names,
        "verified_emails": verified,
        "avatar_url": _text(user.get("avatar_url")),
    }
    name = _text(user.get("name")) or _text(user.get("login"))
    return Identity(_text(user["id"]), email, name, "", claims)


def _claims_identity(data: Mapping[str, Any], *, id_key: str, name: str, email: str) -> Identity:
    if data.get(id_key) in (None, ""):
        raise ProviderError(f"user API: no {id_key!r}")
    return Identity(_text(data[id_key]), _text(data.get(email)), _text(data.get(name)), "", data)


def _google(bases: Bases, token: str, client_id: str) -> Op:
    data = _object(
        (yield from get_json(bases.api + "/v1/userinfo", _bearer(token), what="Google userinfo")),
        "Google userinfo",
    )
    if data.get("email_verified") is False:
        data = {**data, "email": ""}
    return _claims_identity(data, id_key="sub", name="name", email="email")


def _linkedin(bases: Bases, token: str, client_id: str) -> Op:
    data = _object(
        (yield from get_json(bases.api + "/v2/userinfo", _bearer(token), what="LinkedIn userinfo")),
        "LinkedIn userinfo",
    )
    return _claims_identity(data, id_key="sub", name="name", email="email")


def _gitlab(bases: Bases, token: str, client_id: str) -> Op:
    data = _object(
        (yield from get_json(bases.api + "/api/v4/user", _bearer(token), what="GitLab /user")),
        "GitLab /user",
    )
    if not data.get("confirmed_at"):
        data = {**data, "email": ""}
    ident = _claims_identity(data, id_key="id", name="name", email="email")
    return Identity(ident.provider_user_id, ident.email, ident.name or _text(data.get("username")),
                    "", ident.claims)  # fmt: skip


def _microsoft(bases: Bases, token: str, client_id: str) -> Op:
    data = _object(
        (yield from get_json(bases.api + "/v1.0/me", _bearer(token), what="Microsoft Graph /me")),
        "Graph /me",
    )
    email = _text(data.get("mail")) or _text(data.get("userPrincipalName"))
    ident = _claims_identity(data, id_key="id", name="displayName", email="mail")
    return Identity(ident.provider_user_id, email, ident.name, "", ident.claims)


def _amazon(bases: Bases, token: str, client_id: str) -> Op:
    data = _object(
        (yield from get_json(bases.api + "/user/profile", _bearer(token), what="Amazon profile")),
        "Amazon profile",
    )
    return _claims_identity(data, id_key="user_id", name="name", email="email")


def _facebook(bases: Bases, token: str, client_id: str) -> Op:
    url = bases.api + "/v19.0/me?fields=id,name,email"
    data = _object((yield from get_json(url, _bearer(token), what="Facebook /me")), "Facebook /me")
    return _claims_identity(data, id_key="id", name="name", email="email")


def _twitch(bases: Bases, token: str, client_id: str) -> Op:
    headers = (*_bearer(token), ("client-id", client_id))
    body = _object(
        (yield from get_json(bases.api + "/helix/users", headers, what="Twitch /helix/users")),
        "Twitch users",
    )
    users = body.get("data")
    if not isinstance(users, list) or not users or not isinstance(users[0], Mapping):
        raise ProviderError("Twitch /helix/users: no user")
    data = users[0]
    ident = _claims_identity(data, id_key="id", name="display_name", email="email")
    return Identity(ident.provider_user_id, ident.email, ident.name or _text(data.get("login")),
                    "", ident.claims)  # fmt: skip


ADAPTERS: Mapping[str, Adapter] = {
    a.name: a
    for a in (
        Adapter(
            "amazon",
            Bases("https://www.amazon.com", "https://api.amazon.com"),
            "/ap/oa",
            "/auth/o2/token",  # on api.amazon.com: see TOKEN_ON_API
            ("profile",),
            _amazon,
        ),
        Adapter(
            "facebook",
            Bases("https://www.facebook.com", "https://graph.facebook.com"),
            "/v19.0/dialog/oauth",
            "/v19.0/oauth/access_token",
            ("email", "public_profile"),
            _facebook,
            scope_separator=",",
        ),
        Adapter(
            "github",
            Bases("https://github.com", "https://api.github.com"),
            "/login/oauth/authorize",
            "/login/oauth/access_token",
            ("read:user", "user:email", "read:org"),
            _github,
        ),
        Adapter(
            "gitlab",
            Bases("https://gitlab.com", "https://gitlab.com"),
            "/oauth/authorize",
            "/oauth/token",
            ("read_user",),
            _gitlab,
        ),
        Adapter(
            "google",
            Bases("https://accounts.google.com", "https://openidconnect.googleapis.com"),
            "/o/oauth2/v2/auth",
            "https://oauth2.googleapis.com/token",
            (
                "https://www.googleapis.com/auth/userinfo.email",
                "https://www.googleapis.com/auth/userinfo.profile",
            ),
            _google,
        ),
        Adapter(
            "linkedin",
            Bases("https://www.linkedin.com", "https://api.linkedin.com"),
            "/oauth/v2/authorization",
            "/oauth/v2/accessToken",
            ("openid", "profile", "email"),
            _linkedin,
        ),
        Adapter(
            "microsoft",
            Bases("https://login.microsoftonline.com", "https://graph.microsoft.com"),
            "/common/oauth2/v2.0/authorize",
            "/common/oauth2/v2.0/token",
            ("openid", "profile", "email", "User.Read"),
            _microsoft,
        ),
        Adapter(
            "twitch",
            Bases("https://id.twitch.tv", "https://api.twitch.tv"),
            "/oauth2/authorize",
            "/oauth2/token",
            ("user:read:email",),
            _twitch,
        ),
    )
}

# Token endpoints that are not on the web base by default (absolute), and
# what they become when the web base is overridden (tests): the path alone.
_ABSOLUTE_TOKEN = {"google": "/token"}
TOKEN_ON_API = frozenset({"amazon", "facebook"})


def adapter(name: str, web: str | None = None, api: str | None = None) -> Adapter:
    """The adapter for `name`, with base URLs replaced when given."""
    from dataclasses import replace

    base = ADAPTERS[name]
    found = base.with_bases(web, api)
    if name in _ABSOLUTE_TOKEN:
        token = base.token_path if web is None else _ABSOLUTE_TOKEN[name]
        found = replace(found, token_path=token)
    return found


def token_url(a: Adapter) -> str:
    if a.token_path.startswith("https://"):
        return a.token_path
    if a.name in TOKEN_ON_API:
        return a.bases.api + a.token_path
    return a.bases.web + a.token_path


def scopes_for(a: Adapter, extra: Sequence[str]) -> list[str]:
    out = list(a.scopes)
    for s in extra:
        if s not in out:
            out.append(s)
    return out


NAMES = tuple(sorted(ADAPTERS))

__all__ = [
    "ADAPTERS",
    "NAMES",
    "Adapter",
    "Bases",
    "Identity",
    "adapter",
    "scopes_for",
    "token_url",
]
