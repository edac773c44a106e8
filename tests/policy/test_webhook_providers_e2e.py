"""Every webhook provider of verify-webhook end to end: one `edgeward serve`
per backend with one rule per provider id, deliveries signed now by the test
oracle (tests/webhooks/signing.py, written from each provider's
documentation), and the providers' published vectors that sign no timestamp
sent as published.

test_verify_webhook.py covers the challenges (Twitter CRC, Worldline, Xero,
Zoom), sns (certificates from a local HTTPS server) and the id aliases;
here every id is checked to forward a valid delivery with its exact body and
to refuse a tampered or unsigned one. `generic` is not here: it needs the
verifier's options (header, algorithm), which the public action has no
fields for, so a policy cannot name it.
"""

from __future__ import annotations

import base64
import hmac
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.policy.e2e import BACKENDS, Handler, Reply, events, running_edge, serve
from tests.proxy.proxy_support import Edge
from tests.webhooks import signing
from tests.webhooks.signing import SECRET, Delivery, sign
from tests.webhooks.test_published_vectors import PAGERDUTY_SECRET, WORLDLINE_BODY

from edgeward import native

# Every id a policy can name, but sns (its own e2e), generic (see above) and
# contentful, whose canonical request the oracle builds for its own fixed
# path (end to end in test_verify_webhook.py, signed for the edge's path).
PROVIDERS = sorted(native.PROVIDERS - {"generic", "contentful"})
VECTORS = {
    # docs.github.com, "Validating webhook deliveries", testing example
    "/vector/github": ("github", "It's a Secret to Everybody"),
    # Ingenico connect-sdk WebhooksHelperTest, payment.paid
    "/vector/worldline": ("worldline", "hello+world"),
    # go-pagerduty webhookv3_test.go (body from the conformance data set)
    "/vector/pagerduty": ("pagerduty", PAGERDUTY_SECRET),
}


def _secret(provider: str) -> str:
    """What the policy configures: the oracle's form of SECRET (a Standard
    Webhooks `whsec_` key, SendGrid's public key, `user::password`...)."""
    return sign(provider, b"", SECRET).secret


def _policy() -> str:
    configured = {f"/p/{p}": (p, _secret(p)) for p in PROVIDERS} | VECTORS
    rules = []
    for path, (provider, secret) in configured.items():
        quoted = secret.replace("'", "''")
        rules.append(
            f"  - expressions: [\"req.url.path == '{path}'\"]\n"
            f"    actions:\n"
            f"      - type: verify-webhook\n"
            f"        config: {{provider: {provider}, secret: '{quoted}'}}\n"
        )
    return "on_http_request:\n" + "".join(rules)


def _echo_body(handler: Handler) -> Reply:
    return 200, [("content-type", "application/octet-stream")], b"upstream got: " + handler.body


@pytest.fixture(scope="module", params=BACKENDS)
def edge(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Edge]:
    paths = [f"/p/{p}" for p in PROVIDERS] + list(VECTORS)
    with serve(dict.fromkeys(paths, _echo_body)) as upstream:
        directory = tmp_path_factory.mktemp(f"providers-{request.param}")
        with running_edge(directory, _policy(), upstream.url, request.param) as running:
            yield running


def _delivery(provider: str, body: bytes, url: str, monkeypatch: pytest.MonkeyPatch) -> Delivery:
    """Signed now, for the URL the edge sees (URL-signing providers)."""
    monkeypatch.setattr(signing, "TS", int(time.time()))
    monkeypatch.setattr(signing, "URL", url)
    if provider == "hubspot":  # the oracle's case is about an odd URL; sign this one
        ms = str(signing.TS * 1000)
        mac = hmac.new(SECRET.encode(), b"POST" + url.encode() + body + ms.encode(), "sha256")
        sig = base64.b64encode(mac.digest()).decode()
        headers = [("X-HubSpot-Signature-v3", sig), ("X-HubSpot-Request-Timestamp", ms)]
        return Delivery(provider, SECRET, headers, body, url=url, signs_timestamp=True)
    return sign(provider, body, SECRET)


# One client for the module: CLIENT.post() builds a client (and a TLS context)
# per call.
CLIENT = httpx.Client(timeout=10)


def _post(url: str, delivery: Delivery, body: bytes | None = None) -> httpx.Response:
    content = delivery.body if body is None else body
    return CLIENT.request(delivery.method, url, content=content, headers=delivery.headers)


BODY = b'{"event": "e2e", "text": "line\\nbreak \\u00e9", "n": 1}'
FORM = b"From=%2B14155551234&Text=hello+world&To=%2B14155550000"
FORM_SIGNED = {"twilio", "mailchimp", "plivo"}  # POST parameters are what they sign


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_provider_verifies_end_to_end(
    edge: Edge, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = edge.url(f"/p/{provider}?src=test")
    body = FORM if provider in FORM_SIGNED else BODY
    delivery = _delivery(provider, body, url, monkeypatch)
    ok = _post(url, delivery)
    assert (ok.status_code, ok.content) == (200, b"upstream got: " + delivery.body), ok.text
    refused = 401 if provider == "xero" else 403  # Xero's intent-to-receive wants 401
    in_body = not delivery.signature_headers  # mailgun: the signature rides in the body
    if delivery.signs_body or in_body:
        tampered = _post(url, delivery, delivery.body.replace(b"1", b"2").replace(b"+", b"-"))
        assert tampered.status_code == refused, tampered.text
        assert tampered.headers["edgeward-error"] == "ERR_EDGEWARD_3204"
    if not in_body:
        unsigned = CLIENT.post(url, content=delivery.body)
        assert unsigned.status_code == refused


def test_refusals_are_events_that_name_the_provider_without_the_secret(edge: Edge) -> None:
    for provider in PROVIDERS:
        CLIENT.post(edge.url(f"/p/{provider}"), content=BODY, headers={"x-nothing": "1"})
    refused = {
        str(e.get("reason")).partition(":")[0]
        for e in events(edge)
        if e.get("action") == "verify-webhook" and e.get("verdict") != "allow"
    }
    assert set(PROVIDERS) - {"mailgun"} <= refused  # mailgun: this body is no delivery at all
    assert SECRET not in edge.log_text()


def test_published_vectors_end_to_end(edge: Edge, conformance: Path) -> None:
    github = b"Hello, World!"
    sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    pagerduty = (conformance / "webhooks" / "pagerduty-v3-body.json").read_bytes()
    pd_sig = "v1=0c0b9495b893a39e70d1fea2fe11fbe0a825f88b9f67846f6cc07dd2bc5476cd"
    pd_other = "v1=7020c8a7ec668a9b7012bc3dd82e483394b038f4230acc6785efbf2a7d8bcaf5"
    worldline = [("X-GCS-Signature", "2S7doBj/GnJnacIjSJzr5fxGM5xmfQyFAwxv1I53ZEk="),
                 ("X-GCS-KeyId", "dummy-key-id")]  # fmt: skip
    cases = [
        ("/vector/github", github, [("X-Hub-Signature-256", sig)]),
        ("/vector/worldline", WORLDLINE_BODY, worldline),
        ("/vector/pagerduty", pagerduty, [("X-PagerDuty-Signature", f"{pd_other},{pd_sig}")]),
    ]
    for path, body, headers in cases:
        ok = CLIENT.post(edge.url(path), content=body, headers=headers)
        assert (ok.status_code, ok.content) == (200, b"upstream got: " + body), path
        changed = body.replace(b"112414", b"112514") if "worldline" in path else body[:-1]
        bad = CLIENT.post(edge.url(path), content=changed, headers=headers)
        assert bad.status_code == 403, path
