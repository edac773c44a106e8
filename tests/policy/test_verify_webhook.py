from __future__ import annotations

import hashlib
import hmac
import json

from edgeward.hooks import ReadBody

from .helpers import NOW, load, load_error, one, request

GITHUB = """
on_http_request:
  - actions:
      - type: verify-webhook
        config:
          provider: github
          secret: "It's a Secret to Everybody"
"""
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_valid_signature_is_forwarded_with_the_exact_body() -> None:
    h = load(GITHUB)
    r = request(
        h,
        "/hook",
        method="POST",
        body=b"Hello, World!",
        headers=[("X-Hub-Signature-256", GITHUB_SIGNATURE)],
    )
    assert r.forwarded is not None and r.forwarded.body == b"Hello, World!"
    assert r.effects == [ReadBody(1024 * 1024)]
    assert h.events == []


def test_bad_signature_is_403_and_logged_without_the_secret() -> None:
    h = load(GITHUB)
    r = request(
        h,
        "/hook",
        method="POST",
        body=b"Hello, World?",
        headers=[("X-Hub-Signature-256", GITHUB_SIGNATURE)],
    )
    assert r.status == 403 and r.forwarded is None
    (event,) = h.events
    assert event.action == "verify-webhook" and event.error_code == "ERR_EDGEWARD_3204"
    assert event.reason.startswith("github: ")
    assert "Secret" not in event.to_json()
    missing = request(h, "/hook", method="POST", body=b"x")
    assert missing.status == 403


def test_body_is_read_only_when_the_action_runs() -> None:
    h = load(
        """
        on_http_request:
          - expressions: ["req.url.path == '/hook'"]
            actions:
              - type: verify-webhook
                config: {provider: github, secret: s3cret}
        """
    )
    r = request(h, "/other", method="POST", body=b"data")
    assert r.effects == [] and r.forwarded is not None and r.forwarded.body is None


def test_body_over_the_limit_is_413() -> None:
    h = load(GITHUB, body_limit=4)
    r = request(
        h,
        "/hook",
        method="POST",
        body=b"Hello, World!",
        headers=[("X-Hub-Signature-256", GITHUB_SIGNATURE)],
    )
    assert r.status == 413 and r.effects == [ReadBody(4)]


def test_enforce_false_exposes_the_result() -> None:
    h = load(
        """
        on_http_request:
          - actions:
              - type: verify-webhook
                config: {provider: pagerduty, secret: "secret!", enforce: false}
          - expressions: ["!actions.ngrok.verify_webhook.verified"]
            actions:
              - type: custom-response
                config: {status_code: 401, body: "${actions.ngrok.verify_webhook.error.message}"}
        """
    )
    body = b'{"event":{"event_type":"incident.triggered"}}'
    good = "v1=" + hmac.new(b"secret!", body, hashlib.sha256).hexdigest()
    ok = request(
        h, "/pd", method="POST", body=body, headers=[("X-PagerDuty-Signature", f"v1=00, {good}")]
    )
    assert ok.forwarded is not None and ok.forwarded.body == body
    bad = request(h, "/pd", method="POST", body=body, headers=[("X-PagerDuty-Signature", "v1=00")])
    assert bad.status == 401 and bad.body


def test_timestamp_tolerance() -> None:
    policy = """
    on_http_request:
      - actions:
          - type: verify-webhook
            config: {provider: slack, secret: slack-secret, tolerance: 60s}
    """
    h = load(policy)
    body = b"token=x"

    def signed(ts: int) -> list[tuple[str, str]]:
        base = f"v0:{ts}:".encode() + body
        sig = "v0=" + hmac.new(b"slack-secret", base, hashlib.sha256).hexdigest()
        return [("X-Slack-Signature", sig), ("X-Slack-Request-Timestamp", str(ts))]

    assert request(h, method="POST", body=body, headers=signed(int(NOW) - 30)).forwarded is not None
    assert request(h, method="POST", body=body, headers=signed(int(NOW) - 120)).status == 403


def test_load_errors() -> None:
    assert "unknown webhook provider 'nope'" in str(
        load_error(one("verify-webhook", "provider: nope, secret: x"))
    )
    assert "needs a secret" in str(load_error(one("verify-webhook", "provider: github")))
    assert "cannot run in on_tcp_connect" in str(
        load_error(one("verify-webhook", "provider: github, secret: x", phase="on_tcp_connect"))
    )


def test_legacy_type_name_loads_with_a_warning() -> None:
    h = load(one("webhook-validation", "provider: github, secret: x"))
    (warning,) = h.policy.warnings
    assert "verify-webhook" in warning.message


def test_worldline_endpoint_verification_is_answered() -> None:
    h = load(one("verify-webhook", "provider: worldline, secret: s3cret"))
    r = request(h, "/hook", headers=[("X-GCS-Webhooks-Endpoint-Verification", "abc123")])
    assert (r.status, r.body, r.effects) == (200, b"abc123", [])


def _zoom(secret: bytes, body: bytes, ts: int) -> list[tuple[str, str]]:
    sig = hmac.new(secret, f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return [("x-zm-signature", f"v0={sig}"), ("x-zm-request-timestamp", str(ts))]


def test_zoom_url_validation_only_when_signed() -> None:
    h = load(one("verify-webhook", "provider: zoom, secret: zoom-token"))
    body = b'{"event":"endpoint.url_validation","payload":{"plainToken":"qgg8vlvZRS6UdWMr"}}'
    r = request(h, "/zoom", method="POST", body=body, headers=_zoom(b"zoom-token", body, int(NOW)))
    expected = hmac.new(b"zoom-token", b"qgg8vlvZRS6UdWMr", hashlib.sha256).hexdigest()
    assert r.status == 200 and r.forwarded is None
    assert json.loads(r.body) == {"plainToken": "qgg8vlvZRS6UdWMr", "encryptedToken": expected}
    # Unsigned, the challenge is refused: the edge never signs a chosen text.
    forged = request(h, "/zoom", method="POST", body=body, headers=_zoom(b"wrong", body, int(NOW)))
    assert forged.status == 403


def test_xero_failure_is_401() -> None:
    h = load(one("verify-webhook", "provider: xero, secret: xero-key"))
    assert request(h, "/xero", method="POST", body=b"{}").status == 401
