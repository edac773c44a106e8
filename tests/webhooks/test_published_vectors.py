"""The providers' own published examples (traffic-policy-reference.md §4.5;
PagerDuty's body from the conformance data set, `webhooks/`), on both
backends."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest


def test_github(backend: ModuleType) -> None:
    # docs.github.com, "Validating webhook deliveries", testing example.
    sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    args = ("github", "It's a Secret to Everybody", {"X-Hub-Signature-256": sig})
    assert backend.explain_webhook(*args, b"Hello, World!") == (True, "ok")
    assert backend.explain_webhook(*args, b"Hello, World") == (False, "signature mismatch")


SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
    b"G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"
    b"collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F3977"
    b"00885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10"
    b"d2c447fce8b6703c"
)


def test_slack(backend: ModuleType) -> None:
    # Slack, "Verifying requests from Slack", worked example.
    headers = [
        ("X-Slack-Request-Timestamp", "1531420618"),
        (
            "X-Slack-Signature",
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        ),
    ]
    secret = "8f742231b10e8888abcd99yyyzzz85a5"
    assert backend.verify_webhook("slack", secret, headers, SLACK_BODY, now=1531420618 + 60)
    assert backend.explain_webhook("slack", secret, headers, SLACK_BODY, now=1531420618 + 301) == (
        False,
        "stale timestamp",
    )


TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"


@pytest.mark.parametrize(
    ("caller", "signature"),
    [
        ("14158675310", "GvWf1cFY/Q7PnoempGyD5oXAezc="),  # twilio.com/docs/usage/security
        ("14158675309", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),  # twilio-node / twilio-java fixture
        ("12349013030", "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),  # older docs
    ],
)
def test_twilio(backend: ModuleType, caller: str, signature: str) -> None:
    body = (
        f"CallSid=CA1234567890ABCDE&Caller=%2B{caller}&Digits=1234&From=%2B{caller}"
        "&To=%2B18005551212"
    ).encode()
    headers = {
        "X-Twilio-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
    }
    assert backend.verify_webhook("twilio", "12345", headers, body, url=TWILIO_URL)
    reordered = b"&".join(reversed(body.split(b"&")))  # parameters are sorted before signing
    assert backend.verify_webhook("twilio", "12345", headers, reordered, url=TWILIO_URL)
    assert not backend.verify_webhook("twilio", "12345", headers, body + b"&x=1", url=TWILIO_URL)
    assert not backend.verify_webhook("twilio", "12346", headers, body, url=TWILIO_URL)


SVIX = {
    "id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
    "timestamp": "1614265330",
    "signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
}


@pytest.mark.parametrize("provider", ["svix", "clerk", "brex"])
@pytest.mark.parametrize("prefix", ["svix-", "webhook-"])
def test_standard_webhooks(backend: ModuleType, provider: str, prefix: str) -> None:
    # docs.svix.com, "Verifying payloads manually"; the Standard Webhooks spec.
    headers = {prefix + k: v for k, v in SVIX.items()}
    body = b'{"test": 2432232314}'
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    assert backend.explain_webhook(provider, secret, headers, body, now=1614265330) == (True, "ok")
    assert backend.verify_webhook(
        provider, secret.removeprefix("whsec_"), headers, body, now=1614265330
    )
    assert not backend.verify_webhook(provider, secret, headers, body, now=1614265330 + 301)


SENDGRID_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHP"
    "TnlvFYPAZFceEu/1FwCM/QmGUhA=="
)
SENDGRID_OTHER_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntlo7a"
    "NDthvj+y7GjUuFDb/R1NGe1OPzpA=="
)
SENDGRID_SIG = (
    "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j"
    "/0="
)
SENDGRID_BODY = b'{"category":"example_payload","event":"test_event","message_id":"message_id"}'


def _sendgrid(backend: ModuleType, key: str, sig: str, ts: str, body: bytes) -> tuple[bool, str]:
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": sig,
        "X-Twilio-Email-Event-Webhook-Timestamp": ts,
    }
    result: tuple[bool, str] = backend.explain_webhook(
        "sendgrid", key, headers, body, now=1588788367
    )
    return result


def test_sendgrid(backend: ModuleType) -> None:
    # The fixture shared by SendGrid's official SDK test suites.
    args = (SENDGRID_SIG, "1588788367", SENDGRID_BODY)
    assert _sendgrid(backend, SENDGRID_KEY, *args) == (True, "ok")
    assert _sendgrid(backend, SENDGRID_OTHER_KEY, *args) == (False, "signature mismatch")
    bad_sig = SENDGRID_SIG.replace("NH2j/0=", "NH3j/0=")  # the SDKs' bad signature
    assert not _sendgrid(backend, SENDGRID_KEY, bad_sig, *args[1:])[0]
    bad_ts = _sendgrid(backend, SENDGRID_KEY, SENDGRID_SIG, "timestamp", SENDGRID_BODY)
    assert bad_ts == (False, "malformed timestamp")
    assert not _sendgrid(backend, SENDGRID_KEY, SENDGRID_SIG, "1588788367", SENDGRID_BODY + b" ")[0]


# Ingenico connect-sdk-* WebhooksHelperTest: the payment.paid event, LF line ends.
WORLDLINE_BODY = b"""{
  "apiVersion": "v1",
  "id": "8ee793f6-4553-4749-85dc-f2ef095c5ab0",
  "created": "2017-02-02T11:24:14.040+0100",
  "merchantId": "20000",
  "type": "payment.paid",
  "payment": {
    "id": "00000200000143570012",
    "paymentOutput": {
      "amountOfMoney": {
        "amount": 1000,
        "currencyCode": "EUR"
      },
      "references": {
        "paymentReference": "200001681810"
      },
      "paymentMethod": "bankTransfer",
      "bankTransferPaymentMethodSpecificOutput": {
        "paymentProductId": 11
      }
    },
    "status": "PAID",
    "statusOutput": {
      "isCancellable": false,
      "statusCategory": "COMPLETED",
      "statusCode": 1000,
      "statusCodeChangeDateTime": "20170202112414",
      "isAuthorized": true
    }
  }
}"""


def test_worldline(backend: ModuleType) -> None:
    headers = {"X-GCS-Signature": "2S7doBj/GnJnacIjSJzr5fxGM5xmfQyFAwxv1I53ZEk=",
               "X-GCS-KeyId": "dummy-key-id"}  # fmt: skip
    assert backend.explain_webhook("worldline", "hello+world", headers, WORLDLINE_BODY) == (
        True,
        "ok",
    )
    changed = WORLDLINE_BODY.replace(b"112414", b"112514")  # the SDK tests' invalid body
    assert not backend.verify_webhook("worldline", "hello+world", headers, changed)
    assert not backend.verify_webhook("worldline", "1hello+world", headers, WORLDLINE_BODY)


PAGERDUTY_SECRET = "lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK"


def test_pagerduty(backend: ModuleType, conformance: Path) -> None:
    # go-pagerduty webhookv3/webhookv3_test.go: the body from the conformance
    # data set, the signatures from the test.
    body = (conformance / "webhooks" / "pagerduty-v3-body.json").read_bytes()
    valid = "v1=0c0b9495b893a39e70d1fea2fe11fbe0a825f88b9f67846f6cc07dd2bc5476cd"
    mismatch = "v1=7020c8a7ec668a9b7012bc3dd82e483394b038f4230acc6785efbf2a7d8bcaf5"

    def check(sig: str) -> tuple[bool, str]:
        headers = {"X-PagerDuty-Signature": sig}
        result: tuple[bool, str] = backend.explain_webhook(
            "pagerduty", PAGERDUTY_SECRET, headers, body
        )
        return result

    assert check(valid) == (True, "ok")
    assert check(f"{mismatch},{valid}") == (True, "ok")  # rotation: any entry may match
    assert check(mismatch) == (False, "signature mismatch")
    assert check("") == (False, "malformed header x-pagerduty-signature")
    assert not backend.verify_webhook("pagerduty", PAGERDUTY_SECRET, {}, body)


ORB_PAYLOAD = (
    b'{"id": "o4mmewpfNNTnjfZc", "created_at": "2024-03-27T15:42:29+00:00", "type": '
    b'"resource_event.test", "properties": {"message": "A test webhook from Orb. Happy testing!"}}'
)
ORB_SIGNATURE = "9d25de966891ab0bc18754faf8d83d0980b44ae330fcc130b41a6cf3daf1f391"
ORB_NOW = 1711554149.551  # 2024-03-27T15:42:29.551Z, the vector's own timestamp


def test_orb(backend: ModuleType) -> None:
    # Orb's official SDK test (orbcorp/orb-python tests/api_resources/test_webhooks.py):
    # a naive ISO 8601 timestamp read as UTC, space-separated "v1=" entries.
    secret = "c-UGKYdnhHh436B_sMouYAPUvXyWpzOdunZBV5dFSD8"
    headers = {
        "X-Orb-Timestamp": "2024-03-27T15:42:29.551",
        "X-Orb-Signature": f"v1={ORB_SIGNATURE}",
    }
    args = ("orb", secret)
    assert backend.explain_webhook(*args, headers, ORB_PAYLOAD, now=ORB_NOW) == (True, "ok")
    assert backend.explain_webhook(*args, headers, ORB_PAYLOAD, now=ORB_NOW + 360)[1] == (
        "stale timestamp"
    )
    assert backend.explain_webhook(*args, headers, ORB_PAYLOAD, now=ORB_NOW - 360)[1] == (
        "timestamp in the future"
    )
    assert not backend.verify_webhook("orb", "foo", headers, ORB_PAYLOAD, now=ORB_NOW)
    rotated = {**headers, "X-Orb-Signature": f"v1=my_invalid_signature v1={ORB_SIGNATURE}"}
    assert backend.verify_webhook(*args, rotated, ORB_PAYLOAD, now=ORB_NOW)
    other_version = {**headers, "X-Orb-Signature": f"v2={ORB_SIGNATURE}"}
    assert backend.explain_webhook(*args, other_version, ORB_PAYLOAD, now=ORB_NOW) == (
        False,
        "malformed header x-orb-signature",
    )
    assert backend.verify_webhook(
        *args, {**headers, "X-Orb-Signature": f"v2={ORB_SIGNATURE} v1={ORB_SIGNATURE}"},
        ORB_PAYLOAD, now=ORB_NOW,
    )  # fmt: skip
