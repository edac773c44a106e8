"""`openid-connect` (also written `oidc`): log users in with any OpenID
Provider before their requests go on, and expose who they are as
`actions.ngrok.oidc.*` (docs/identity.md).

The flow, sessions and token checks live in `edgeward.identity`; this
module reads the config, registers the client with the edge's identity
runtime and runs the flow per request."""

from __future__ import annotations

from collections.abc import Generator
from typing import Self

from edgeward.hooks import Effect, EffectResult
from edgeward.identity import Client, Runtime, SessionOptions
from edgeward.identity.flow import client_key
from edgeward.identity.http import check_url
from edgeward.policy.actions import _identity
from edgeward.policy.actions.base import (
    Action,
    ActionContext,
    CompileScope,
    ConfigReader,
    Decision,
    Phase,
)

DEFAULT_SCOPES = ("openid", "profile", "email")


class OpenIdConnect(Action):
    type = "openid-connect"
    phases = frozenset({Phase.HTTP_REQUEST})
    result_key = "oidc"

    def __init__(self, runtime: Runtime, client: Client, options: SessionOptions) -> None:
        self.runtime = runtime
        self.client = client
        self.options = options

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        runtime = _identity.runtime_for(config, scope, "openid-connect")
        issuer = config.string("issuer_url", required=True) or ""
        insecure = runtime.allow_insecure_loopback
        problem = check_url(issuer, allow_insecure_loopback=insecure)
        if problem is not None:
            if scope.options.edge or not _identity.looks_like_placeholder(issuer):
                config.fail("issuer_url", f"issuer_url: {problem}")
            config.warn("issuer_url", f"issuer_url {issuer!r} looks like a placeholder")
        client_id, secret = _identity.credentials(
            config,
            scope,
            required_help=(
                "client_id is required: register this edge as an application (client) at the"
                f" OpenID Provider with the redirect URI {runtime.callback_url} and copy its"
                " client id and secret here (docs/identity.md)"
            ),
        )
        scopes = config.string_list("scopes") or list(DEFAULT_SCOPES)
        if "openid" not in scopes:
            scopes = ["openid", *scopes]
        params = _identity.authz_params(config)
        options = _identity.session_options(
            config, idle_key="idle_session_duration", idle_alias="idle_session_timeout"
        )
        key = client_key("oidc", issuer, client_id.source, tuple(scopes), sorted(params.items()))
        client = runtime.register(
            Client(
                key=key,
                kind="oidc",
                credentials=_identity.render_credentials(client_id, secret, scope),
                scopes=tuple(scopes),
                authz_params=params,
                discovery=runtime.discovery(issuer, allow_insecure_loopback=insecure),
            )
        )
        return cls(runtime, client, options)

    def run(self, ctx: ActionContext) -> Generator[Effect, EffectResult, Decision | None]:
        return (
            yield from _identity.run_flow(ctx, self.runtime, self.client, self.options, oidc=True)
        )
