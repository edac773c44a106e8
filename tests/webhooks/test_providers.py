"""Every provider, on both backends: deliveries signed by the independent
oracle (`signing.py`) verify, and every kind of damage is rejected."""

from __future__ import annotations

from dataclasses import replace
from types import ModuleType

import pytest

from edgeward.webhooks import reference

from .signing import SIGNERS, TS, Delivery, sign, twilio_json

PROVIDERS = sorted(SIGNERS)
REQUIRED = {
    "github", "gitlab", "stripe", "slack", "twilio", "shopify", "pagerduty", "svix", "zoom",
    "okta", "intercom", "hubspot", "square", "mailgun", "sendgrid", "linear", "calendly",
    "segment", "typeform", "generic",
}  # fmt: skip
BODY = b'{"event":"ping","data":{"id":42,"note":"caf\xc3\xa9"}}'
TIMESTAMPED = [p for p in PROVIDERS if sign(p, BODY).signs_timestamp]


def test_provider_set(backend: ModuleType) -> None:
    assert set(backend.PROVIDERS) == set(SIGNERS)
    assert set(backend.PROVIDERS) >= REQUIRED
    assert dict(backend.DEFAULT_TOLERANCE_S) == dict(reference.DEFAULT_TOLERANCE_S)
    assert backend.DEFAULT_TOLERANCE_S["stripe"] == 300
    assert backend.DEFAULT_TOLERANCE_S["zoom"] == 180  # no documented value: ngrok's 180 s


@pytest.mark.parametrize("provider", PROVIDERS)
def test_signed_delivery_verifies(backend: ModuleType, provider: str) -> None:
    delivery = sign(provider, BODY)
    assert delivery.explain(backend) == (True, "ok")
    assert backend.verify_webhook(
        provider, delivery.secret, delivery.headers, delivery.body,
        url=delivery.url, now=TS, options=delivery.options,
    )  # fmt: skip
    empty = sign(provider, b"")
    assert empty.explain(backend) == (True, "ok")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_header_names_are_case_insensitive(backend: ModuleType, provider: str) -> None:
    delivery = sign(provider, BODY)
    for case in (str.upper, str.lower):
        headers = [(case(name), value) for name, value in delivery.headers]
        assert delivery.explain(backend, headers=headers) == (True, "ok")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_tampered_body_fails(backend: ModuleType, provider: str) -> None:
    delivery = sign(provider, BODY)
    if provider == "mailgun":
        # Mailgun signs timestamp + token only; damage the token.
        tampered = delivery.body.replace(delivery.extra["token"][:8].encode(), b"00000000")
        assert delivery.explain(backend, body=tampered) == (False, "signature mismatch")
        return
    if not delivery.signs_body:
        pytest.skip(f"{provider} sends a shared token: the body is not signed")
    for tampered in (BODY + b" ", BODY[:-1], BODY.replace(b"42", b"43"), b""):
        assert delivery.explain(backend, body=tampered)[0] is False


@pytest.mark.parametrize("provider", PROVIDERS)
def test_wrong_secret_fails(backend: ModuleType, provider: str) -> None:
    good = sign(provider, BODY)
    other = sign(provider, BODY, secret="another-secret-98765")
    if provider == "sendgrid":
        pytest.skip("the SendGrid secret is a public key: covered by the published negatives")
    ok, reason = good.explain(backend, secret=other.secret)
    assert not ok
    assert reason in ("signature mismatch", "token mismatch")
    assert other.secret not in reason and good.secret not in reason


@pytest.mark.parametrize("provider", PROVIDERS)
def test_missing_headers_fail(backend: ModuleType, provider: str) -> None:
    delivery = sign(provider, BODY)
    ok, reason = delivery.explain(backend, headers=[])
    if provider == "mailgun":
        assert ok  # Mailgun's signature travels in the (JSON) body
        return
    assert not ok
    assert reason.startswith("missing header")
    for name in delivery.signature_headers:
        if name == "content-type":
            continue  # twilio: without it the form parameters are not signed
        kept = [(n, v) for n, v in delivery.headers if n.lower() != name]
        ok, reason = delivery.explain(backend, headers=kept)
        assert not ok, name


@pytest.mark.parametrize("provider", PROVIDERS)
def test_duplicated_headers_fail(backend: ModuleType, provider: str) -> None:
    delivery = sign(provider, BODY)
    for name, value in delivery.headers:
        if name.lower() not in delivery.signature_headers:
            continue
        # Even an identical copy is refused: what the upstream reads is ambiguous.
        for copy in (value, "garbage"):
            headers = [*delivery.headers, (name.upper(), copy)]
            assert delivery.explain(backend, headers=headers) == (
                False,
                f"duplicate header {name.lower()}",
            )


GARBAGE = ["", " ", "=", ",", "v1=", "sha256=", "t=,v1=", "v1,", "HMAC ", "zz", "é", "\x00",
           "t=1700000000", "v1=" + "0" * 64, "sha256=" + "g" * 64]  # fmt: skip


@pytest.mark.parametrize("provider", PROVIDERS)
def test_malformed_header_values_fail(backend: ModuleType, provider: str) -> None:
    delivery = sign(provider, BODY)
    for index, (name, _) in enumerate(delivery.headers):
        if name.lower() not in delivery.signature_headers or name.lower() == "content-type":
            continue
        for junk in GARBAGE:
            headers = list(delivery.headers)
            headers[index] = (name, junk)
            ok, reason = delivery.explain(backend, headers=headers)
            if provider in ("svix", "clerk", "brex") and name.endswith("id"):
                assert not ok  # the id is signed
            assert not ok, (name, junk, reason)


@pytest.mark.parametrize("provider", TIMESTAMPED)
def test_stale_and_future_timestamps_fail(backend: ModuleType, provider: str) -> None:
    delivery = sign(provider, BODY)
    assert delivery.explain(backend, now=TS + 300) == (True, "ok")
    assert delivery.explain(backend, now=TS - 300) == (True, "ok")
    assert delivery.explain(backend, now=TS + 300.5) == (False, "stale timestamp")
    assert delivery.explain(backend, now=TS - 301) == (False, "timestamp in the future")
    assert delivery.explain(backend, now=TS + 10, tolerance_s=5) == (False, "stale timestamp")
    assert delivery.explain(backend, now=float("nan")) == (False, "stale timestamp")
    # A default `now` is the current time, long after the signed timestamp.
    assert delivery.explain(backend, now=None) == (False, "stale timestamp")


def test_twilio_json_body(backend: ModuleType) -> None:
    delivery = twilio_json(BODY)
    assert delivery.explain(backend) == (True, "ok")
    assert delivery.explain(backend, body=BODY + b" ") == (False, "body hash mismatch")
    assert delivery.explain(backend, url=delivery.url + "0") == (False, "signature mismatch")


def test_twilio_tries_the_url_with_and_without_port(backend: ModuleType) -> None:
    delivery = sign("twilio", b"A=1&B=2")
    with_port = delivery.url.replace("example.com/", "example.com:443/")
    assert delivery.explain(backend, url=with_port) == (True, "ok")
    # As in Twilio's SDKs, an explicit port is also tried removed (the URL is
    # the edge's own, not the sender's).
    other_port = delivery.url.replace("example.com/", "example.com:8443/")
    assert delivery.explain(backend, url=other_port) == (True, "ok")
    other_path = delivery.url.replace("/in?", "/in/?")
    assert delivery.explain(backend, url=other_path) == (False, "signature mismatch")


def test_hubspot_signs_method_and_url(backend: ModuleType) -> None:
    delivery = sign("hubspot", BODY)
    assert delivery.explain(backend, method="PUT") == (False, "signature mismatch")
    assert delivery.explain(backend, url=delivery.url + "&z=1") == (False, "signature mismatch")


def test_mailgun_form_body(backend: ModuleType) -> None:
    delivery = sign("mailgun", BODY)
    fields = (b"timestamp=%d&token=%s&signature=%s&event=delivered")
    from .signing import SECRET, _hmac

    token = "t0k3n"
    sig = _hmac("sha256", SECRET, f"{TS}{token}").hex()
    body = fields % (TS, token.encode(), sig.encode())
    form = [("Content-Type", "application/x-www-form-urlencoded")]
    assert delivery.explain(backend, headers=form, body=body) == (True, "ok")
    assert delivery.explain(backend, headers=form, body=body + b"&token=x") == (
        False,
        "malformed body",
    )
    assert delivery.explain(backend, body=b"not json") == (False, "malformed body")


@pytest.mark.parametrize("header", ["Authorization", "X-Okta-Secret"])
def test_okta_header_option(backend: ModuleType, header: str) -> None:
    delivery = replace(sign("okta", BODY), headers=[(header, "Bearer s3cr3t")])
    options = {"header": header} if header != "Authorization" else None
    assert delivery.explain(backend, secret="Bearer s3cr3t", options=options) == (True, "ok")
    assert delivery.explain(backend, secret="Bearer s3cr3", options=options) == (
        False,
        "token mismatch",
    )


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
@pytest.mark.parametrize("encoding", ["hex", "base64"])
@pytest.mark.parametrize("prefix", ["", "sig="])
def test_generic_options(backend: ModuleType, algorithm: str, encoding: str, prefix: str) -> None:
    import base64
    import hashlib
    import hmac

    mac = hmac.new(b"k3y", BODY, getattr(hashlib, algorithm)).digest()
    text = mac.hex() if encoding == "hex" else base64.b64encode(mac).decode()
    options = {"header": "X-Sig", "algorithm": algorithm, "encoding": encoding, "prefix": prefix}
    delivery = Delivery("generic", "k3y", [("x-sig", prefix + text)], BODY, options=options)
    assert delivery.explain(backend) == (True, "ok")
    if encoding == "hex":
        upper = [("x-sig", prefix + text.upper())]
        assert delivery.explain(backend, headers=upper) == (True, "ok")
    assert delivery.explain(backend, body=BODY + b"!") == (False, "signature mismatch")
