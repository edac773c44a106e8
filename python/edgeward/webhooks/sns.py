"""Amazon SNS message signatures (`verify-webhook` provider `sns`).

SNS signs each HTTP(S) delivery with RSA and a certificate it publishes at
the message's `SigningCertURL` (AWS, "Verifying the signatures of Amazon SNS
messages": https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html):

- the string to sign is ``Name\\nvalue\\n`` for each signed field, in this
  order: Notification: ``Message, MessageId, Subject`` (only when present),
  ``Timestamp, TopicArn, Type``; SubscriptionConfirmation and
  UnsubscribeConfirmation: ``Message, MessageId, SubscribeURL, Timestamp,
  Token, TopicArn, Type``;
- ``SignatureVersion`` 1 is SHA1withRSA, 2 is SHA256withRSA (PKCS #1 v1.5);
- the certificate must come over HTTPS from ``sns.<region>.amazonaws.com``
  (``.amazonaws.com.cn`` in China): any other URL is refused before it is
  fetched, so a forged message cannot name its own certificate, nor make the
  edge fetch an arbitrary URL. ``SubscribeURL`` is held to the same rule.

Only the signature proves the message came from SNS, not from *your* topic:
anyone can create a topic and subscribe your endpoint. The policy's
``secret`` is therefore the topic owner's AWS account id (as the public
integration guide sets it: "Topic owner"), checked against the message's
``TopicArn``.

This module does no I/O: `CertCache` says what to fetch, the action performs
the `Fetch` effect (like `edgeward.policy.jwks`) and hands the result back.
Python only: the Rust core has no X.509 and `cryptography` is already a
dependency (docs/webhooks.md).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from edgeward.hooks import Fetch, FetchResult

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "TEST_HOSTS_ENV",
    "CertCache",
    "SnsFailure",
    "SnsMessage",
    "allowed_test_hosts",
    "check_owner",
    "check_timestamp",
    "check_url",
    "header",
    "load_key",
    "parse",
    "verify",
]

# SNS retries a failed delivery for up to an hour under a custom delivery
# policy: a signed Timestamp older than that is a replay.
DEFAULT_TOLERANCE_S = 3600.0
CERT_TTL = 86_400.0  # a certificate URL names one certificate: keep it a day
RETRY_INTERVAL = 5.0  # after a failed fetch of one URL
MAX_CERTS = 16
MAX_INFLIGHT = 4  # certificate fetches at once, per action
FETCH_TIMEOUT = 5.0
MAX_BODY = 256 * 1024  # SNS messages are at most 256 KiB

# The test-only override: a comma-separated list of host[:port] accepted
# besides sns.<region>.amazonaws.com (a local HTTPS server in the tests).
# Its name says what it is for; the action warns at every load when it is set.
TEST_HOSTS_ENV = "EDGEWARD_TEST_ONLY_SNS_HOSTS"

_SNS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?", re.ASCII)
_ACCOUNT = re.compile(r"\d{12}", re.ASCII)
_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
}  # fmt: skip
_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


class SnsFailure(Exception):
    """The message does not verify; `args[0]` is the reason (no secret in it)."""


@dataclass(frozen=True, slots=True)
class SnsMessage:
    type: str
    fields: Mapping[str, str]
    signature: bytes
    version: str
    cert_url: str

    @property
    def topic_arn(self) -> str:
        return self.fields["TopicArn"]

    @property
    def subscribe_url(self) -> str | None:
        return self.fields.get("SubscribeURL")

    def string_to_sign(self) -> bytes:
        names = _SIGNED_FIELDS[self.type]
        return "".join(f"{n}\n{self.fields[n]}\n" for n in names if n in self.fields).encode()


def allowed_test_hosts(environ: Mapping[str, str] = os.environ) -> frozenset[str]:
    """The hosts the test-only variable adds (lower case, with any port)."""
    raw = environ.get(TEST_HOSTS_ENV, "")
    return frozenset(h.strip().lower() for h in raw.split(",") if h.strip())


def check_url(url: str, test_hosts: Iterable[str] = ()) -> None:
    """`url` must be HTTPS on sns.<region>.amazonaws.com(.cn), default port,
    no credentials; or on one of the test-only hosts."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise SnsFailure("malformed body") from None
    host = (parts.hostname or "").lower()
    authority = f"{host}:{port}" if port is not None else host
    if parts.scheme == "https" and authority in set(test_hosts):
        return
    if (
        parts.scheme != "https"
        or port not in (None, 443)
        or parts.username is not None
        or not _SNS_HOST.fullmatch(host)
    ):
        raise SnsFailure("URL not on an sns.<region>.amazonaws.com host")


def parse(body: bytes, message_type_header: str | None) -> SnsMessage:
    """The signed message in `body` (SNS posts JSON as text/plain)."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise SnsFailure("malformed body") from None
    if not isinstance(doc, dict):
        raise SnsFailure("malformed body")
    kind = doc.get("Type")
    if kind not in _SIGNED_FIELDS:
        raise SnsFailure("malformed body")
    if message_type_header is not None and message_type_header != kind:
        raise SnsFailure("malformed header x-amz-sns-message-type")
    fields: dict[str, str] = {}
    for name in _SIGNED_FIELDS[kind]:
        value = doc.get(name)
        if value is None and name == "Subject":
            continue
        if not isinstance(value, str):
            raise SnsFailure("malformed body")
        fields[name] = value
    version = doc.get("SignatureVersion")
    cert_url = doc.get("SigningCertURL")
    signature = doc.get("Signature")
    if version not in _HASHES or not isinstance(cert_url, str) or not isinstance(signature, str):
        raise SnsFailure("malformed body")
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise SnsFailure("malformed body") from None
    return SnsMessage(kind, fields, raw, version, cert_url)


def check_owner(message: SnsMessage, owner: str | None) -> None:
    """The topic must belong to `owner` (a 12-digit account id), when set."""
    arn = message.topic_arn.split(":")
    if len(arn) != 6 or arn[0] != "arn" or arn[2] != "sns" or not _ACCOUNT.fullmatch(arn[4]):
        raise SnsFailure("malformed body")
    if owner is not None and arn[4] != owner:
        raise SnsFailure("topic of another account")


def check_timestamp(message: SnsMessage, now: float, tolerance_s: float) -> None:
    try:
        stamp = datetime.fromisoformat(message.fields["Timestamp"]).timestamp()
    except ValueError:
        raise SnsFailure("malformed timestamp") from None
    age = now - stamp
    if not abs(age) <= tolerance_s:
        raise SnsFailure("timestamp in the future" if age < 0 else "stale timestamp")


def verify(message: SnsMessage, key: rsa.RSAPublicKey) -> None:
    try:
        key.verify(
            message.signature,
            message.string_to_sign(),
            padding.PKCS1v15(),
            _HASHES[message.version](),
        )
    except InvalidSignature:
        raise SnsFailure("signature mismatch") from None


def load_key(pem: bytes, now: float) -> rsa.RSAPublicKey:
    """The RSA public key of a PEM certificate valid at `now`."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise SnsFailure("the signing certificate is not a PEM certificate") from None
    if not cert.not_valid_before_utc.timestamp() <= now <= cert.not_valid_after_utc.timestamp():
        raise SnsFailure("the signing certificate is not valid now")
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SnsFailure("the signing certificate has no RSA key")
    return key


@dataclass(slots=True)
class _Entry:
    key: rsa.RSAPublicKey | None = None
    expires_at: float = 0.0
    failed_at: float = float("-inf")
    failure: str | None = None


class CertCache:
    """Signing keys by certificate URL: bounded, least recently used out,
    failures retried no more often than `RETRY_INTERVAL` per URL, at most
    `MAX_INFLIGHT` fetches at once."""

    def __init__(self) -> None:
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self.inflight = 0

    def _entry(self, url: str) -> _Entry:
        entry = self._entries.get(url)
        if entry is None:
            entry = self._entries[url] = _Entry()
            if len(self._entries) > MAX_CERTS:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(url)
        return entry

    def key(self, url: str, now: float) -> rsa.RSAPublicKey | None:
        entry = self._entries.get(url)
        if entry is None or entry.key is None or now >= entry.expires_at:
            return None
        return entry.key

    def wants_fetch(self, url: str, now: float) -> bool:
        entry = self._entry(url)
        if entry.key is not None and now < entry.expires_at:
            return False
        return self.inflight < MAX_INFLIGHT and now - entry.failed_at >= RETRY_INTERVAL

    def failure(self, url: str) -> str:
        entry = self._entries.get(url)
        return (entry.failure if entry else None) or "the signing certificate is unavailable"

    def request(self, url: str) -> Fetch:
        self.inflight += 1
        return Fetch(url, timeout_s=FETCH_TIMEOUT)

    def abandon(self) -> None:
        self.inflight = max(0, self.inflight - 1)

    def update(self, url: str, result: FetchResult, now: float) -> None:
        self.abandon()
        entry = self._entry(url)
        try:
            if result.status != 200:
                raise SnsFailure(
                    f"fetching the signing certificate failed ({result.error or result.status})"
                )
            entry.key = load_key(result.body, now)
        except SnsFailure as exc:
            entry.failed_at = now
            entry.failure = str(exc)
            return
        entry.expires_at = now + CERT_TTL
        entry.failure = None


def header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The one value of `name`, None when absent; a repeated header fails."""
    values = [v for n, v in headers if n.lower() == name]
    if len(values) > 1:
        raise SnsFailure(f"duplicate header {name.decode()}")
    return values[0].decode("latin-1").strip(" \t") if values else None
