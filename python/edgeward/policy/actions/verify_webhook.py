"""`verify-webhook`: check a webhook's signature at the edge.

The body is read (once, up to the engine's body limit) only when this action
runs, verified by the native verifier, and then forwarded byte for byte.
Results: `actions.ngrok.verify_webhook.verified` and `.error.code` /
`.error.message`. A failure answers 403 when enforced; events and results
name the provider and the reason, never the secret.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Self

from edgeward import native
from edgeward.hooks import Effect, EffectResult
from edgeward.policy.actions._http import error_decision
from edgeward.policy.actions.base import (
    Action,
    ActionContext,
    CompileScope,
    ConfigReader,
    Decision,
    Phase,
)
from edgeward.policy.errors import ErrorCode
from edgeward.policy.variables import full_url

# Replay tolerance: the provider's documented value, else the public
# gateway's default of 180 s.
DEFAULT_TOLERANCE_S = 180.0
PROVIDER_TOLERANCE_S = {
    "stripe": 300.0,
    "slack": 300.0,
    "svix": 300.0,
    "clerk": 300.0,
    "brex": 300.0,
    "hubspot": 300.0,
    "mux": 300.0,
    "frameio": 300.0,
    "orb": 300.0,
    "box": 600.0,
    "calendly": 180.0,
}
_NO_SECRET = frozenset({"sns"})  # signed with the provider's public key


class VerifyWebhook(Action):
    type = "verify-webhook"
    phases = frozenset({Phase.HTTP_REQUEST})

    def __init__(
        self, provider: str, secret: native.Template | None, enforce: bool, tolerance: float
    ) -> None:
        self.provider = provider
        self.secret = secret
        self.enforce = enforce
        self.tolerance = tolerance

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        provider = config.string("provider", required=True)
        assert provider is not None
        if provider not in native.PROVIDERS:
            config.fail("provider", f"unknown webhook provider {provider!r}")
        secret = config.template("secret")
        if provider in _NO_SECRET:
            if secret is not None:
                config.fail("secret", f"provider {provider!r} does not take a secret")
        elif secret is None or (secret.is_constant and not secret.source):
            config.fail(None, f"provider {provider!r} needs a secret")
        enforce = config.boolean("enforce", default=True)
        default = PROVIDER_TOLERANCE_S.get(provider, DEFAULT_TOLERANCE_S)
        tolerance = config.duration(
            "tolerance", default=default, minimum=1, maximum=86_400, aliases=("skew_tolerance",)
        )
        assert enforce is not None and tolerance is not None
        return cls(provider, secret, enforce, tolerance)

    def run(self, ctx: ActionContext) -> Generator[Effect, EffectResult, Decision | None]:
        body = yield from ctx.read_body()
        if body is None:
            reason = f"body larger than {ctx.state.body_limit} bytes"
            self._record(ctx, False, reason)
            return error_decision(
                413, ErrorCode.BODY_TOO_LARGE, "Payload Too Large",
                reason=f"{self.provider}: {reason}",
            )
        received = ctx.received
        assert received is not None
        secret = ctx.render(self.secret) if self.secret is not None else ""
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in received.headers]
        headers.append(("host", received.authority.decode("latin-1")))
        verified, reason = native.explain_webhook(
            self.provider,
            secret,
            headers,
            body,
            url=full_url(received),
            now=ctx.now(),
            tolerance_s=self.tolerance,
        )
        self._record(ctx, verified, reason)
        if verified or not self.enforce:
            return None
        return error_decision(
            403, ErrorCode.WEBHOOK_FAILED, "Forbidden: webhook verification failed",
            reason=f"{self.provider}: {reason}",
        )

    def _record(self, ctx: ActionContext, verified: bool, reason: str) -> None:
        results: dict[str, Any] = {"verified": verified}
        if not verified:
            results["error"] = {"code": ErrorCode.WEBHOOK_FAILED.value, "message": reason}
        ctx.record("verify_webhook", results)
