"""What `oauth` and `openid-connect` share: the session fields of their
config, the client's credentials, running the login flow of
`edgeward.identity` for a request and recording the results."""

from __future__ import annotations

import re
from collections.abc import Generator, Mapping
from typing import Any

from edgeward import native
from edgeward.hooks import Effect, EffectResult
from edgeward.identity import Client, Credentials, Outcome, Runtime, SessionOptions
from edgeward.identity.flow import (
    RESERVED_AUTHZ_PARAMS,
    cookie_names,
    guard,
    session_ref,
    strip_cookies,
    user_ref,
)
from edgeward.identity.runtime import request_of
from edgeward.policy.actions.base import ActionContext, CompileScope, ConfigReader, Decision
from edgeward.policy.config import constant
from edgeward.policy.variables import timestamp

_PLACEHOLDER = re.compile(r"^(\$[A-Za-z_]|\{|<)|YOUR[_ ]|your[_ ]", re.IGNORECASE)
_AUTH_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DOMAIN = re.compile(r"^\.?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")


def runtime_for(config: ConfigReader, scope: CompileScope, type_name: str) -> Runtime:
    """The edge's identity runtime; compiled for an edge without
    `identity:`, a load error; without an edge (`policy check`), a warning
    and a private runtime so the policy still loads and `policy test` can
    run (docs/identity.md §1)."""
    runtime = scope.options.identity
    if runtime is not None:
        return runtime
    message = (
        f"{type_name} needs the edge config's identity: section (auth_host, keys_file):"
        " the auth host completes logins for every endpoint (see docs/identity.md)"
    )
    if scope.options.edge:
        config.fail(None, message)
    config.warn(None, f"{message}; checked without an edge config, the policy loads")
    return Runtime.standalone()


def looks_like_placeholder(text: str) -> bool:
    return bool(_PLACEHOLDER.search(text)) and "${" not in text


def credentials(
    config: ConfigReader, scope: CompileScope, *, required_help: str
) -> tuple[native.Template, native.Template | None]:
    """`client_id` and `client_secret`: `${...}` may only read `secrets`
    (the auth host renders them without a request). An empty `client_id`
    is an error for an edge (a warning for a policy checked alone); a
    placeholder from the docs is a warning."""
    client_id = config.template("client_id", default="")
    secret = config.template("client_secret")
    assert client_id is not None
    for key, template in (("client_id", client_id), ("client_secret", secret)):
        if template is None:
            continue
        if any(not ref.startswith("secrets") for ref in template.references):
            config.fail(
                key,
                f"{key} may only interpolate secrets.get(...): the auth host uses it"
                " without a request",
            )
        if template.is_constant and looks_like_placeholder(constant(template)):
            config.warn(key, f"{key} {constant(template)!r} looks like a placeholder from the docs")
    if client_id.is_constant and not constant(client_id):
        if scope.options.edge:
            config.fail("client_id", required_help)
        config.warn("client_id", required_help)
    return client_id, secret


def render_credentials(
    client_id: native.Template, secret: native.Template | None, scope: CompileScope
) -> Any:
    activation = {"secrets": scope.options.secrets}

    def creds() -> Credentials:
        return Credentials(
            client_id.render(activation), secret.render(activation) if secret else ""
        )

    return creds


def session_options(config: ConfigReader, *, idle_key: str, idle_alias: str) -> SessionOptions:
    auth_id = config.string("auth_id", default="") or ""
    if auth_id and not _AUTH_ID.match(auth_id):
        config.fail("auth_id", "auth_id must be 1-64 of A-Z a-z 0-9 _ - (it names cookies)")
    domain = (config.string("auth_cookie_domain", default="") or "").lower() or None
    if domain is not None and not _DOMAIN.match(domain):
        config.fail("auth_cookie_domain", f"not a domain: {domain!r}")
    max_duration = config.duration("max_session_duration", minimum=1)
    idle = config.duration(idle_key, minimum=1, aliases=(idle_alias,))
    refresh = config.duration("userinfo_refresh_interval", minimum=1)
    preflight = config.boolean("allow_cors_preflight", default=False)
    return SessionOptions(
        auth_id=auth_id,
        max_duration=max_duration,
        idle_duration=idle,
        userinfo_refresh=refresh,
        allow_cors_preflight=bool(preflight),
        cookie_domain=domain.lstrip(".") if domain else None,
    )


def authz_params(config: ConfigReader) -> dict[str, str]:
    raw = config.value("authz_url_params", default={})
    if not isinstance(raw, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        config.fail("authz_url_params", "authz_url_params must map names to strings")
    for name in raw:
        if name in RESERVED_AUTHZ_PARAMS:
            config.fail("authz_url_params", f"{name!r} is set by the login flow itself")
    return dict(raw)


def run_flow(
    ctx: ActionContext,
    runtime: Runtime,
    client: Client,
    options: SessionOptions,
    *,
    oidc: bool,
) -> Generator[Effect, EffectResult, Decision | None]:
    assert ctx.received is not None and ctx.request is not None
    outcome: Outcome = yield from guard(
        runtime, client, options, request_of(ctx.received), ctx.now()
    )
    key = "oidc" if oidc else "oauth"
    if ctx.records:
        ctx.record(key, results(outcome, client, oidc=oidc))
    if outcome.reply is not None:
        reply = outcome.reply
        verdict = "redirect" if reply.status in (301, 302, 303, 307, 308) else "respond"
        if reply.status >= 400:
            verdict = "deny"
        return Decision.respond(
            reply.status,
            headers=reply.headers,
            body=reply.body,
            error_code=reply.error_code,
            verdict=verdict,
            reason=f"{key}: {reply.reason or reply.status}",
        )
    if outcome.session is not None:
        strip_cookies(ctx.request.headers, cookie_names(options))
    return None


def results(outcome: Outcome, client: Client, *, oidc: bool) -> dict[str, Any]:
    session = outcome.session
    out: dict[str, Any] = {
        "session_timed_out": outcome.timed_out,
        "session_max_duration_reached": outcome.max_duration_reached,
    }
    refreshed = session.userinfo_refreshed if session else False
    out["userinfo_refreshed"] = refreshed
    if oidc:
        out["user_info_refreshed"] = refreshed
    if session is not None:
        ident = session.identity
        identity: dict[str, Any] = {
            "id": user_ref(client.key, ident.provider_user_id),
            "email": ident.email,
            "name": ident.name,
            "provider_user_id": ident.provider_user_id,
            "claims": dict(ident.claims),
        }
        if oidc:
            identity["current_session_id"] = session_ref(session.id)
        else:
            identity["current_provider_session_id"] = ident.provider_session_id
        out["identity"] = identity
        out["access_token"] = session.access_token
        out["refresh_token"] = session.refresh_token
        out["expires_at"] = timestamp(
            session.expires_at if session.expires_at is not None else session.ends_at
        )
        if oidc:
            out["identity_token"] = session.id_token
    else:
        empty: dict[str, Any] = {
            "id": "",
            "email": "",
            "name": "",
            "provider_user_id": "",
            "claims": {},
        }
        empty["current_session_id" if oidc else "current_provider_session_id"] = ""
        out["identity"] = empty
    if outcome.error is not None:
        out["error"] = {"code": outcome.error[0], "message": outcome.error[1]}
    return out
