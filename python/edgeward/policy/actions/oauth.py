"""`oauth`: log users in with a social provider (amazon, facebook, github,
gitlab, google, linkedin, microsoft, twitch) before their requests go on,
and expose who they are as `actions.ngrok.oauth.*` (docs/identity.md).

A self-hosted edge has no managed app: `client_id` (and usually
`client_secret`) come from an OAuth app the operator registers at the
provider with the auth host's callback URL. Endpoints, scopes and user
APIs per provider: `edgeward.identity.providers`."""

from __future__ import annotations

from collections.abc import Generator
from typing import Self

from edgeward.hooks import Effect, EffectResult
from edgeward.identity import Client, Runtime, SessionOptions
from edgeward.identity.flow import client_key
from edgeward.identity.http import check_url
from edgeward.identity.providers import NAMES, adapter, scopes_for
from edgeward.policy.actions import _identity
from edgeward.policy.actions.base import (
    Action,
    ActionContext,
    CompileScope,
    ConfigReader,
    Decision,
    Phase,
)


class OAuth(Action):
    type = "oauth"
    phases = frozenset({Phase.HTTP_REQUEST})

    def __init__(self, runtime: Runtime, client: Client, options: SessionOptions) -> None:
        self.runtime = runtime
        self.client = client
        self.options = options

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        runtime = _identity.runtime_for(config, scope, "oauth")
        name = config.string("provider", required=True, choices=NAMES) or ""
        web, api = runtime.provider_bases.get(name, (None, None))
        for url in (web, api):
            problem = url and check_url(
                url, allow_insecure_loopback=runtime.allow_insecure_loopback
            )
            if problem:
                config.fail("provider", f"identity.providers.{name}: {problem}")
        found = adapter(name, web, api)
        client_id, secret = _identity.credentials(
            config,
            scope,
            required_help=(
                "client_id is required: edgeward has no managed app. Register an OAuth app at"
                f" {name} with the callback (redirect) URL {runtime.callback_url}, then set"
                " client_id and client_secret (docs/identity.md)"
            ),
        )
        scopes = scopes_for(found, config.string_list("scopes") or [])
        params = _identity.authz_params(config)
        options = _identity.session_options(
            config, idle_key="idle_session_timeout", idle_alias="idle_session_duration"
        )
        key = client_key(
            "oauth", name, found.bases, client_id.source, tuple(scopes), sorted(params.items())
        )
        client = runtime.register(
            Client(
                key=key,
                kind=name,
                credentials=_identity.render_credentials(client_id, secret, scope),
                scopes=tuple(scopes),
                authz_params=params,
                adapter=found,
            )
        )
        return cls(runtime, client, options)

    def run(self, ctx: ActionContext) -> Generator[Effect, EffectResult, Decision | None]:
        return (
            yield from _identity.run_flow(ctx, self.runtime, self.client, self.options, oidc=False)
        )
