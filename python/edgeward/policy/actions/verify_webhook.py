"""`verify-webhook`: check a webhook's signature at the edge.

The body is read (once, up to the engine's body limit) only when this action
runs, verified by the native verifier (Amazon SNS: `edgeward.webhooks.sns`,
whose certificates are fetched through the `Fetch` effect), and then
forwarded byte for byte. Results: `actions.ngrok.verify_webhook.verified`
and `.error.code` / `.error.message`. A failure answers 403 when enforced;
events and results name the provider and the reason, never the secret.

The providers' endpoint-verification handshakes are answered here, as the
public action does (docs/webhooks.md, "Challenges"): Twitter CRC, Worldline,
Xero intent-to-receive, Zoom URL validation. SNS subscription confirmations
are confirmed by fetching their `SubscribeURL`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Generator
from typing import Any, Self
from urllib.parse import parse_qsl

from edgeward import native
from edgeward.document import did_you_mean
from edgeward.hooks import Effect, EffectResult, Fetch, RequestHead
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
from edgeward.webhooks import sns

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
# The spellings the public integration pages use for three ids.
ALIASES = {
    "vmware_workspace": "vmware",
    "sonatype_nexus": "sonatype",
    "signalsciences": "signal_sciences",
}
SNS = "sns"  # verified here (X.509 + fetched certificates), not by the native verifier

# Secrets copied from a documentation example rather than from the provider.
_PLACEHOLDER = re.compile(
    r"\{[^{}]*\}|<[^<>]*>|\$\{?[A-Z_][A-Z0-9_]*\}?|^\.{3,}$|x{4,}|your|_here\b|changeme",
    re.IGNORECASE,
)
# Provider secret formats worth a hint when a constant does not have them.
_FORMATS = {
    "stripe": (re.compile(r"whsec_\S+"), "Stripe signing secrets start with 'whsec_'"),
    "twilio": (re.compile(r"[0-9a-f]{32}"), "Twilio auth tokens are 32 hex digits"),
}


def secret_warnings(provider: str, secret: str) -> list[str]:
    """Hints about a constant secret that the provider accepts but that
    does not look like one it issues (never quoting the secret)."""
    if _PLACEHOLDER.search(secret.strip()):
        return [
            f"the {provider} secret looks like a placeholder from an example; "
            "requests will not verify until it is the provider's secret"
        ]
    pattern, hint = _FORMATS.get(provider, (None, ""))
    if pattern is not None and not pattern.fullmatch(secret):
        return [f"{hint}: this one does not look like one, requests may not verify"]
    return []


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
        self.certs = sns.CertCache() if provider == SNS else None
        self.sns_test_hosts = sns.allowed_test_hosts() if provider == SNS else frozenset()

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        written = config.string("provider", required=True)
        assert written is not None
        provider = ALIASES.get(written, written)
        if provider not in native.PROVIDERS and provider != SNS:
            if provider in PUBLIC_PROVIDERS:
                config.fail(
                    "provider", f"webhook provider {provider!r} is not supported by edgeward yet"
                )
            hint = did_you_mean(provider, (*native.PROVIDERS, *PUBLIC_PROVIDERS))
            config.fail("provider", f"unknown webhook provider {provider!r}{hint}")
        secret = config.template("secret")
        enforce = config.boolean("enforce", default=True)
        if provider == SNS:
            default = sns.DEFAULT_TOLERANCE_S
            _check_sns_secret(config, secret)
        else:
            default = native.DEFAULT_TOLERANCE_S.get(provider, 180.0)
            if secret is None or (secret.is_constant and not constant(secret)):
                config.fail(None, f"provider {provider!r} needs a secret")
        tolerance = config.duration(
            "tolerance", default=default, minimum=1, maximum=86_400, aliases=("skew_tolerance",)
        )
        assert enforce is not None and tolerance is not None
        if provider != SNS and secret is not None and secret.is_constant:
            try:  # an unusable key (a Svix secret that is not base64...) fails now
                native.verify_webhook(provider, constant(secret), {}, b"", url="https://x/", now=0)
            except ValueError as exc:
                config.fail("secret", f"unusable secret for {provider}: {exc}")
            for warning in secret_warnings(provider, constant(secret)):
                config.warn("secret", warning)
        return cls(provider, secret, enforce, tolerance)

    def run(self, ctx: ActionContext) -> Generator[Effect, EffectResult, Decision | None]:
        received = ctx.received
        assert received is not None
        secret = ctx.render(self.secret) if self.secret is not None else ""
        challenge = _challenge(self.provider, received, secret)
        if challenge is not None:
            return challenge
        body = yield from ctx.read_body()
        if body is None:
            reason = f"body larger than {ctx.state.policy.body_limit} bytes"
            self._record(ctx, False, reason)
            return error_decision(
                ctx,
                413,
                ErrorCode.BODY_TOO_LARGE,
                "Payload Too Large",
                reason=f"{self.provider}: {reason}",
            )
        extra: dict[str, Any] = {}
        if self.provider == SNS:
            verified, reason, extra = yield from self._sns(ctx, received, body, secret)
        else:
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
                    ErrorCode.ACTION_FAILED,
                    f"{self.provider}: the interpolated secret is unusable",
                ) from None
        self._record(ctx, verified, reason, extra)
        if verified:
            return _after_verification(self.provider, secret, body)
        if not self.enforce:
            return None
        return error_decision(
            ctx,
            401 if self.provider == "xero" else 403,  # Xero's intent-to-receive wants 401
            ErrorCode.WEBHOOK_FAILED,
            "Forbidden: webhook verification failed",
            reason=f"{self.provider}: {reason}",
        )

    def _sns(
        self, ctx: ActionContext, received: RequestHead, body: bytes, owner: str
    ) -> Generator[Effect, EffectResult, tuple[bool, str, dict[str, Any]]]:
        """Verify an SNS message; confirm a subscription once verified
        (`subscription_confirmed` joins the results)."""
        certs = self.certs
        assert certs is not None
        try:
            message = sns.parse(body, sns.header(received.headers, b"x-amz-sns-message-type"))
            sns.check_owner(message, owner or None)
            sns.check_url(message.cert_url, self.sns_test_hosts)
            if certs.wants_fetch(message.cert_url, ctx.now()):
                fetch = certs.request(message.cert_url)
                try:
                    result = yield from ctx.fetch(fetch)
                except BaseException:  # the exchange was abandoned mid-fetch
                    certs.abandon()
                    raise
                certs.update(message.cert_url, result, ctx.now())
            key = certs.key(message.cert_url, ctx.now())
            if key is None:
                raise sns.SnsFailure(certs.failure(message.cert_url))
            sns.verify(message, key)
            sns.check_timestamp(message, ctx.now(), self.tolerance)
        except sns.SnsFailure as failure:
            return False, str(failure.args[0]), {}
        if message.type == "SubscriptionConfirmation" and message.subscribe_url is not None:
            confirmed = yield from self._confirm(ctx, message.subscribe_url)
            return True, "ok", {"subscription_confirmed": confirmed}
        return True, "ok", {}

    def _confirm(self, ctx: ActionContext, url: str) -> Generator[Effect, EffectResult, bool]:
        """Visit `SubscribeURL` (AWS: "confirm the subscription"), held to the
        same host rule as the certificate; the request is then forwarded as
        usual, so an application that confirms itself still can."""
        try:
            sns.check_url(url, self.sns_test_hosts)
        except sns.SnsFailure:
            return False
        result = yield from ctx.fetch(Fetch(url, timeout_s=sns.FETCH_TIMEOUT))
        return result.status == 200

    def _record(
        self, ctx: ActionContext, verified: bool, reason: str, extra: dict[str, Any] | None = None
    ) -> None:
        results: dict[str, Any] = {"verified": verified, **(extra or {})}
        if not verified:
            results["error"] = {"code": ErrorCode.WEBHOOK_FAILED.value, "message": reason}
        ctx.record("verify_webhook", results)


def _check_sns_secret(config: ConfigReader, secret: native.Template | None) -> None:
    """SNS has no shared secret. The public integration guide sets `secret`
    to the topic owner's account id, which is what edgeward checks the
    TopicArn against; anything else can never match and is refused."""
    sns_hosts = sns.allowed_test_hosts()
    if sns_hosts:
        config.warn(
            "provider",
            f"{sns.TEST_HOSTS_ENV} is set: SNS certificates are accepted from "
            f"{', '.join(sorted(sns_hosts))} (for tests only, never in production)",
        )
    if secret is None:
        config.warn(
            None,
            "sns without a secret accepts messages of any AWS account's topic: "
            "set secret to the topic owner's 12-digit account id",
        )
        return
    if secret.is_constant and not re.fullmatch(r"\d{12}", constant(secret)):
        config.fail(
            "secret",
            "for sns the secret is the topic owner's 12-digit AWS account id "
            "(SNS itself has no shared secret); this value can never match a TopicArn",
        )


# --- endpoint verification handshakes the public gateway answers itself ------------
# Worldline echoes a value (no secret involved). Twitter's CRC signs a token
# of the caller's choosing with the consumer secret: a signing oracle, but one
# Twitter's protocol puts on whoever answers CRC (docs/webhooks.md); it is
# answered only on GET with a crc_token. Zoom's challenge and Xero's
# intent-to-receive are answered only once their own signature verified.


def _challenge(provider: str, received: RequestHead, secret: str) -> Decision | None:
    if received.method != b"GET":
        return None
    if provider == "worldline":
        return _worldline_verification(received)
    if provider == "twitter":
        return _twitter_crc(received, secret)
    return None


def _worldline_verification(received: RequestHead) -> Decision | None:
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


def _twitter_crc(received: RequestHead, secret: str) -> Decision | None:
    """Twitter/X Account Activity CRC: ``GET ?crc_token=T`` is answered
    ``{"response_token": "sha256=" + base64(HMAC-SHA256(consumer secret, T))}``."""
    query = received.target.partition(b"?")[2].decode("latin-1")
    tokens = [v for k, v in parse_qsl(query, keep_blank_values=True) if k == "crc_token"]
    if len(tokens) != 1 or not tokens[0]:
        return None
    mac = hmac.new(secret.encode(), tokens[0].encode(), hashlib.sha256).digest()
    answer = json.dumps({"response_token": "sha256=" + base64.b64encode(mac).decode()})
    return Decision.respond(
        200,
        headers=[(b"content-type", b"application/json")],
        body=answer.encode(),
        verdict="respond",
        reason="twitter crc challenge",
    )


def _after_verification(provider: str, secret: str, body: bytes) -> Decision | None:
    if provider == "zoom":
        return _zoom_validation(secret, body)
    if provider == "xero":
        return _xero_intent_to_receive(body)
    return None


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def _zoom_validation(secret: str, body: bytes) -> Decision | None:
    if b"endpoint.url_validation" not in body:
        return None
    event = _json_object(body)
    payload = event.get("payload") if event is not None else None
    token = payload.get("plainToken") if isinstance(payload, dict) else None
    if (
        event is None
        or event.get("event") != "endpoint.url_validation"
        or not isinstance(token, str)
    ):
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


def _xero_intent_to_receive(body: bytes) -> Decision | None:
    """Xero's intent-to-receive deliveries carry no events; a correctly
    signed one is answered 200 with an empty body (a wrong one got 401)."""
    doc = _json_object(body)
    if doc is None or doc.get("events") != [] or "firstEventSequence" not in doc:
        return None
    return Decision.respond(200, verdict="respond", reason="xero intent to receive")
