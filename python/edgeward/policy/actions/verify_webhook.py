"""`verify-webhook`: check a webhook's signature at the edge.

The body is read (once, up to the engine's body limit) only when this action
runs, verified by the native verifier, and then forwarded byte for byte.
Results: `actions.ngrok.verify_webhook.verified` and `.error.code` /
`.error.message`. A failure answers 403 when enforced; events and results
name the provider and the reason, never the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Generator
from typing import Any, Self

from edgeward import native
from edgeward.document import did_you_mean
from edgeward.hooks import Effect, EffectResult, RequestHead
from edgeward.policy.actions._http import error_decision
from edgeward.policy.actions.base import (
    Action,
    ActionContext,
    CompileScope,
    ConfigReader,
    Decision,
    Phase,
)
from edgeward.policy.config import constant
from edgeward.policy.errors import ActionError, ErrorCode
from edgeward.policy.variables import full_url

# The provider ids of the public format; those the verifier lacks are
# refused at load ("not supported"), not mistaken for typos.
PUBLIC_PROVIDERS = frozenset(
    [
        "aftership",
        "airship",
        "alchemy",
        "sns",
        "autodesk",
        "bitbucket",
        "bolt",
        "box",
        "brex",
        "buildkite",
        "calendly",
        "castle",
        "chargify",
        "circleci",
        "clearbit",
        "clerk",
        "coinbase",
        "contentful",
        "docusign",
        "dropbox",
        "facebook_graph_api",
        "facebook_messenger",
        "frameio",
        "github",
        "gitlab",
        "go1",
        "heroku",
        "hostedhooks",
        "hubspot",
        "graphcms",
        "instagram",
        "intercom",
        "jira",
        "launch_darkly",
        "linear",
        "mailchimp",
        "mailgun",
        "microsoft_teams",
        "modern_treasury",
        "mongodb",
        "mux",
        "orb",
        "orbit",
        "pagerduty",
        "pinwheel",
        "plivo",
        "pusher",
        "sendgrid",
        "sentry",
        "shopify",
        "signal_sciences",
        "slack",
        "sonatype",
        "square",
        "stripe",
        "svix",
        "terraform",
        "tiktok",
        "trendmicro_conformity",
        "twilio",
        "twitter",
        "typeform",
        "vmware",
        "webex",
        "whatsapp",
        "worldline",
        "xero",
        "zendesk",
        "zoom",
    ]
)
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
            if provider in PUBLIC_PROVIDERS:
                config.fail(
                    "provider", f"webhook provider {provider!r} is not supported by edgeward yet"
                )
            hint = did_you_mean(provider, (*native.PROVIDERS, *PUBLIC_PROVIDERS))
            config.fail("provider", f"unknown webhook provider {provider!r}{hint}")
        secret = config.template("secret")
        if provider in _NO_SECRET:
            if secret is not None:
                config.fail("secret", f"provider {provider!r} does not take a secret")
        elif secret is None or (secret.is_constant and not constant(secret)):
            config.fail(None, f"provider {provider!r} needs a secret")
        enforce = config.boolean("enforce", default=True)
        default = native.DEFAULT_TOLERANCE_S.get(provider, 180.0)
        tolerance = config.duration(
            "tolerance", default=default, minimum=1, maximum=86_400, aliases=("skew_tolerance",)
        )
        assert enforce is not None and tolerance is not None
        if secret is not None and secret.is_constant:
            try:  # an unusable key (a Svix secret that is not base64...) fails now
                native.verify_webhook(provider, constant(secret), {}, b"", url="https://x/", now=0)
            except ValueError as exc:
                config.fail("secret", f"unusable secret for {provider}: {exc}")
        return cls(provider, secret, enforce, tolerance)

    def run(self, ctx: ActionContext) -> Generator[Effect, EffectResult, Decision | None]:
        received = ctx.received
        assert received is not None
        echo = _worldline_verification(self.provider, received)
        if echo is not None:
            return echo
        body = yield from ctx.read_body()
        if body is None:
            reason = f"body larger than {ctx.state.policy.body_limit} bytes"
            self._record(ctx, False, reason)
            return error_decision(
                413,
                ErrorCode.BODY_TOO_LARGE,
                "Payload Too Large",
                reason=f"{self.provider}: {reason}",
            )
        secret = ctx.render(self.secret) if self.secret is not None else ""
        try:
            verified, reason = native.explain_webhook(
                self.provider,
                secret,
                received.headers,
                body,
                url=full_url(received),
                now=ctx.now(),
                tolerance_s=self.tolerance,
                method=received.method.decode("latin-1"),
            )
        except ValueError:  # an interpolated secret the provider cannot use
            raise ActionError(
                ErrorCode.ACTION_FAILED, f"{self.provider}: the interpolated secret is unusable"
            ) from None
        self._record(ctx, verified, reason)
        if verified:
            return _zoom_validation(self.provider, secret, body)
        if not self.enforce:
            return None
        return error_decision(
            401 if self.provider == "xero" else 403,  # Xero's intent-to-receive wants 401
            ErrorCode.WEBHOOK_FAILED,
            "Forbidden: webhook verification failed",
            reason=f"{self.provider}: {reason}",
        )

    def _record(self, ctx: ActionContext, verified: bool, reason: str) -> None:
        results: dict[str, Any] = {"verified": verified}
        if not verified:
            results["error"] = {"code": ErrorCode.WEBHOOK_FAILED.value, "message": reason}
        ctx.record("verify_webhook", results)


# --- endpoint verification handshakes the public gateway answers itself ------------
# Only those that cannot be turned into a signing oracle: Worldline echoes a
# value (no secret involved); Zoom's challenge is answered only when the
# challenge itself carries a valid signature, so nobody can have the edge
# sign a text of their choosing. (Twitter's CRC signs an unsigned query
# parameter with the webhook key: it is such an oracle and is not answered.)


def _worldline_verification(provider: str, received: RequestHead) -> Decision | None:
    if provider != "worldline" or received.method != b"GET":
        return None
    for name, value in received.headers:
        if name.lower() == b"x-gcs-webhooks-endpoint-verification":
            return Decision.respond(
                200,
                headers=[(b"content-type", b"text/plain")],
                body=value,
                verdict="respond",
                reason="worldline endpoint verification",
            )
    return None


def _zoom_validation(provider: str, secret: str, body: bytes) -> Decision | None:
    if provider != "zoom" or b"endpoint.url_validation" not in body:
        return None
    try:
        event = json.loads(body)
        token = event["payload"]["plainToken"]
    except (ValueError, KeyError, TypeError):
        return None
    if event.get("event") != "endpoint.url_validation" or not isinstance(token, str):
        return None
    encrypted = hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()
    answer = json.dumps({"plainToken": token, "encryptedToken": encrypted}).encode()
    return Decision.respond(
        200,
        headers=[(b"content-type", b"application/json")],
        body=answer,
        verdict="respond",
        reason="zoom endpoint validation",
    )
