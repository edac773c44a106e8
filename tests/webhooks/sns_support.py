"""Test oracle for Amazon SNS: a locally generated signing certificate and
messages signed the way AWS documents it ("Verifying the signatures of Amazon
SNS messages"), written independently of `edgeward.webhooks.sns`."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

ACCOUNT = "123456789012"
TOPIC = f"arn:aws:sns:us-east-2:{ACCOUNT}:MyTopic"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def certificate_pem(key: rsa.RSAPrivateKey = KEY, *, days: int = 30) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


SIGNED = {
    "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
    "SubscriptionConfirmation": [
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ],
}  # fmt: skip


def message(
    kind: str,
    cert_url: str,
    *,
    version: str = "2",
    key: rsa.RSAPrivateKey = KEY,
    topic: str = TOPIC,
    timestamp: dt.datetime | None = None,
    subscribe_url: str = "https://sns.us-east-2.amazonaws.com/?Action=ConfirmSubscription",
    subject: str | None = "hello",
) -> dict[str, Any]:
    stamp = (timestamp or dt.datetime.now(dt.UTC)).isoformat(timespec="milliseconds")
    doc: dict[str, Any] = {
        "Type": kind,
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": topic,
        "Message": "My First Message\nwith two lines",
        "Timestamp": stamp.replace("+00:00", "Z"),
        "SignatureVersion": version,
        "SigningCertURL": cert_url,
    }
    if kind == "Notification":
        if subject is not None:
            doc["Subject"] = subject
        doc["UnsubscribeURL"] = "https://sns.us-east-2.amazonaws.com/?Action=Unsubscribe"
    else:
        doc["Token"] = "2336412f37fb687f5d51e6e2425c464de12884"
        doc["SubscribeURL"] = subscribe_url
    text = "".join(f"{name}\n{doc[name]}\n" for name in SIGNED[kind] if name in doc)
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(text.encode(), padding.PKCS1v15(), digest)
    doc["Signature"] = base64.b64encode(signature).decode()
    return doc


def body(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()
