"""`edgeward.webhooks.sns` (Python only: X.509 with `cryptography`): the
string to sign, the URL rule, the topic owner, the certificate cache."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from edgeward.hooks import FetchResult
from edgeward.webhooks import sns

from .sns_support import ACCOUNT, KEY, body, certificate_pem, message

CERT_URL = "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-abc.pem"


def _key() -> rsa.RSAPublicKey:
    return sns.load_key(certificate_pem(), time.time())


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("kind", ["Notification", "SubscriptionConfirmation"])
def test_signed_messages_verify(kind: str, version: str) -> None:
    doc = message(kind, CERT_URL, version=version)
    parsed = sns.parse(body(doc), kind)
    sns.check_owner(parsed, ACCOUNT)
    sns.verify(parsed, _key())
    sns.check_timestamp(parsed, time.time(), 60)
    tampered = sns.parse(body({**doc, "Message": "other"}), None)
    with pytest.raises(sns.SnsFailure, match="signature mismatch"):
        sns.verify(tampered, _key())


def test_notification_without_subject() -> None:
    parsed = sns.parse(body(message("Notification", CERT_URL, subject=None)), None)
    assert b"Subject" not in parsed.string_to_sign()
    sns.verify(parsed, _key())


def test_other_key_fails() -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    parsed = sns.parse(body(message("Notification", CERT_URL, key=other)), None)
    with pytest.raises(sns.SnsFailure, match="signature mismatch"):
        sns.verify(parsed, _key())


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-east-1.amazonaws.com/x.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/x.pem",
        "https://SNS.eu-west-1.amazonaws.com:443/x.pem",
    ],
)
def test_certificate_urls_on_sns_hosts(url: str) -> None:
    sns.check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/x.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example/x.pem",
        "https://evil.example/sns.us-east-1.amazonaws.com/x.pem",
        "https://sns.us-east-1.amazonaws.com@evil.example/x.pem",
        "https://user@sns.us-east-1.amazonaws.com/x.pem",
        "https://sns.us-east-1.amazonaws.com:8443/x.pem",
        "https://s3.amazonaws.com/x.pem",
        "https://127.0.0.1:8443/x.pem",
        "https://[::1/x.pem",
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(sns.SnsFailure):
        sns.check_url(url)


def test_test_only_hosts_must_be_named_with_their_port() -> None:
    hosts = sns.allowed_test_hosts({sns.TEST_HOSTS_ENV: " 127.0.0.1:8443 ,"})
    assert hosts == {"127.0.0.1:8443"}
    sns.check_url("https://127.0.0.1:8443/cert.pem", hosts)
    with pytest.raises(sns.SnsFailure):
        sns.check_url("https://127.0.0.1:9443/cert.pem", hosts)
    with pytest.raises(sns.SnsFailure):
        sns.check_url("http://127.0.0.1:8443/cert.pem", hosts)
    assert sns.allowed_test_hosts({}) == frozenset()


def test_topic_owner() -> None:
    parsed = sns.parse(body(message("Notification", CERT_URL)), None)
    sns.check_owner(parsed, None)
    with pytest.raises(sns.SnsFailure, match="another account"):
        sns.check_owner(parsed, "210987654321")
    odd = sns.parse(body(message("Notification", CERT_URL, topic="arn:aws:s3:::bucket")), None)
    with pytest.raises(sns.SnsFailure, match="malformed body"):
        sns.check_owner(odd, None)


@pytest.mark.parametrize(
    "raw",
    [b"", b"[]", b"{}", b'{"Type": "Other"}', b"not json",
     json.dumps({**message("Notification", CERT_URL), "SignatureVersion": "3"}).encode(),
     json.dumps({**message("Notification", CERT_URL), "Signature": "!!"}).encode(),
     json.dumps({**message("Notification", CERT_URL), "Message": 5}).encode()],
)  # fmt: skip
def test_malformed_messages(raw: bytes) -> None:
    with pytest.raises(sns.SnsFailure, match="malformed body"):
        sns.parse(raw, None)


def test_message_type_header_must_agree() -> None:
    with pytest.raises(sns.SnsFailure, match="x-amz-sns-message-type"):
        sns.parse(body(message("Notification", CERT_URL)), "SubscriptionConfirmation")


def test_timestamp_window() -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    parsed = sns.parse(body(message("Notification", CERT_URL, timestamp=old)), None)
    with pytest.raises(sns.SnsFailure, match="stale timestamp"):
        sns.check_timestamp(parsed, time.time(), sns.DEFAULT_TOLERANCE_S)


def test_cert_cache_fetches_once_and_backs_off_after_failures() -> None:
    cache = sns.CertCache()
    now = 1000.0
    assert cache.wants_fetch(CERT_URL, now)
    cache.request(CERT_URL)
    cache.update(CERT_URL, FetchResult(200, body=certificate_pem()), time.time())
    assert not cache.wants_fetch(CERT_URL, time.time())
    assert cache.key(CERT_URL, time.time()) is not None
    other = CERT_URL.replace("abc", "def")
    cache.request(other)
    cache.update(other, FetchResult(404), now)
    assert cache.key(other, now) is None and "404" in cache.failure(other)
    assert not cache.wants_fetch(other, now + 1)
    assert cache.wants_fetch(other, now + sns.RETRY_INTERVAL)
    cache.request(other)
    cache.update(other, FetchResult(200, body=b"not pem"), now + 10)
    assert "not a PEM" in cache.failure(other)


def test_cert_cache_bounds_fetches_in_flight() -> None:
    cache = sns.CertCache()
    for i in range(sns.MAX_INFLIGHT):
        assert cache.wants_fetch(f"{CERT_URL}{i}", 0)
        cache.request(f"{CERT_URL}{i}")
    assert not cache.wants_fetch(CERT_URL + "x", 0)


def test_expired_certificate_is_refused() -> None:
    pem = certificate_pem(KEY, days=1)
    with pytest.raises(sns.SnsFailure, match="not valid now"):
        sns.load_key(pem, time.time() + 3 * 86_400)
