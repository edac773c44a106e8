"""Test oracle: signs deliveries the way each provider documents it.

Written from the providers' documentation (docs/webhooks.md lists the
pages), independently of both verifiers: it builds the exact header values a
provider sends, so a verifier that misreads a scheme fails these tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

TS = 1_700_000_000  # the signed timestamp of every delivery
URL = "https://hooks.example.com/in?src=test"
SECRET = "test-secret-0123456789"
EC_KEY = ec.derive_private_key(0x5EED_F00D_CAFE_BEEF, ec.SECP256R1())


def public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    """SendGrid's verification key format: base64 DER SubjectPublicKeyInfo."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


EC_PUBLIC = public_key_b64(EC_KEY)


@dataclass(frozen=True)
class Delivery:
    """A signed request and what its verifier is configured with."""

    provider: str
    secret: str
    headers: list[tuple[str, str]]
    body: bytes
    url: str | None = None
    options: dict[str, str] | None = None
    method: str = "POST"
    signs_timestamp: bool = False
    signs_body: bool = True
    signature_headers: tuple[str, ...] = ()  # what the check reads
    extra: dict[str, Any] = field(default_factory=dict)

    def explain(self, backend: Any, **overrides: Any) -> tuple[bool, str]:
        kwargs: dict[str, Any] = {
            "url": self.url,
            "now": TS,
            "tolerance_s": 300,
            "options": self.options,
            "method": self.method,
        }
        kwargs.update(overrides)
        headers = kwargs.pop("headers", self.headers)
        body = kwargs.pop("body", self.body)
        secret = kwargs.pop("secret", self.secret)
        result: tuple[bool, str] = backend.explain_webhook(
            self.provider, secret, headers, body, **kwargs
        )
        return result

    def with_headers(self, headers: list[tuple[str, str]]) -> Delivery:
        return replace(self, headers=headers)


def _hmac(alg: str, key: bytes | str, *parts: bytes | str) -> bytes:
    key_bytes = key.encode() if isinstance(key, str) else key
    msg = b"".join(p.encode() if isinstance(p, str) else p for p in parts)
    return hmac.new(key_bytes, msg, alg).digest()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _body_hmac(header: str, alg: str, encoding: str, prefix: str = "") -> Callable[..., Delivery]:
    def sign(provider: str, body: bytes, secret: str) -> Delivery:
        mac = _hmac(alg, secret, body)
        text = mac.hex() if encoding == "hex" else _b64(mac)
        return Delivery(provider, secret, [(header, prefix + text)], body,
                        signature_headers=(header,))  # fmt: skip

    return sign


def _slack_like(header: str, ts_header: str, version: str) -> Callable[..., Delivery]:
    def sign(provider: str, body: bytes, secret: str) -> Delivery:
        mac = _hmac("sha256", secret, f"{version}:{TS}:", body).hex()
        headers = [(header, f"{version}={mac}"), (ts_header, str(TS))]
        return Delivery(provider, secret, headers, body, signs_timestamp=True,
                        signature_headers=(header, ts_header))  # fmt: skip

    return sign


def _stripe_like(header: str, t: str = "t", v: str = "v1") -> Callable[..., Delivery]:
    def sign(provider: str, body: bytes, secret: str) -> Delivery:
        mac = _hmac("sha256", secret, f"{TS}.", body).hex()
        value = f"{t}={TS},{v}={'0' * 64},{v}={mac}"  # a rotated-out key's entry first
        return Delivery(provider, secret, [(header, value)], body, signs_timestamp=True,
                        signature_headers=(header,))  # fmt: skip

    return sign


def _standard(prefix: str) -> Callable[..., Delivery]:
    def sign(provider: str, body: bytes, secret: str) -> Delivery:
        key = secret.encode()
        msg_id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
        mac = _b64(_hmac("sha256", key, f"{msg_id}.{TS}.", body))
        headers = [
            (f"{prefix}id", msg_id),
            (f"{prefix}timestamp", str(TS)),
            (f"{prefix}signature", f"v1,{_b64(b'old key' * 4)} v1,{mac}"),
        ]
        names = tuple(n for n, _ in headers)
        return Delivery(provider, "whsec_" + _b64(key), headers, body, signs_timestamp=True,
                        signature_headers=names)  # fmt: skip

    return sign


def _token(header: str) -> Callable[..., Delivery]:
    def sign(provider: str, body: bytes, secret: str) -> Delivery:
        return Delivery(provider, secret, [(header, secret)], body, signs_body=False,
                        signature_headers=(header,))  # fmt: skip

    return sign


def _twilio(provider: str, body: bytes, secret: str) -> Delivery:
    # Twilio: the URL, then every POST parameter name+value sorted by name.
    params = sorted(set(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)))
    signed = URL + "".join(k + v for k, v in params)
    sig = _b64(_hmac("sha1", secret, signed))
    headers = [("X-Twilio-Signature", sig), ("Content-Type", "application/x-www-form-urlencoded")]
    return Delivery(provider, secret, headers, body, url=URL,
                    signature_headers=("x-twilio-signature", "content-type"))  # fmt: skip


def twilio_json(body: bytes, secret: str = SECRET) -> Delivery:
    """Twilio's JSON variant: the body's SHA-256 rides in the signed URL."""
    url = f"{URL}&bodySHA256={hashlib.sha256(body).hexdigest()}"
    headers = [("X-Twilio-Signature", _b64(_hmac("sha1", secret, url))),
               ("Content-Type", "application/json")]  # fmt: skip
    return Delivery("twilio", secret, headers, body, url=url,
                    signature_headers=("x-twilio-signature",))  # fmt: skip


def _square(provider: str, body: bytes, secret: str) -> Delivery:
    sig = _b64(_hmac("sha256", secret, URL, body))
    return Delivery(provider, secret, [("x-square-hmacsha256-signature", sig)], body, url=URL,
                    signature_headers=("x-square-hmacsha256-signature",))  # fmt: skip


def _hubspot(provider: str, body: bytes, secret: str) -> Delivery:
    ms = str(TS * 1000)
    url = "https://hooks.example.com/in%3Fa%3Db?x=%2Fy"  # HubSpot decodes %3F and %2F
    decoded = "https://hooks.example.com/in?a%3Db?x=/y"
    sig = _b64(_hmac("sha256", secret, "POST", decoded, body, ms))
    headers = [("X-HubSpot-Signature-v3", sig), ("X-HubSpot-Request-Timestamp", ms)]
    names = tuple(n.lower() for n, _ in headers)
    return Delivery(provider, secret, headers, body, url=url, signs_timestamp=True,
                    signature_headers=names)  # fmt: skip


def _mailgun(provider: str, body: bytes, secret: str) -> Delivery:
    token = hashlib.sha256(body).hexdigest()[:50]  # the event is bound through the token here
    sig = _hmac("sha256", secret, f"{TS}{token}").hex()
    doc = {
        "signature": {"timestamp": str(TS), "token": token, "signature": sig},
        "event-data": {"event": "delivered", "raw": body.decode("latin-1")},
    }
    return Delivery(provider, secret, [("Content-Type", "application/json")],
                    json.dumps(doc).encode(), signs_timestamp=True, signs_body=False,
                    extra={"token": token})  # fmt: skip


def _sendgrid(provider: str, body: bytes, secret: str) -> Delivery:
    # RFC 6979 nonces: the same delivery signs the same (hypothesis replays draws)
    sig = EC_KEY.sign(
        str(TS).encode() + body, ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
    )
    headers = [
        ("X-Twilio-Email-Event-Webhook-Signature", _b64(sig)),
        ("X-Twilio-Email-Event-Webhook-Timestamp", str(TS)),
    ]
    return Delivery(provider, EC_PUBLIC, headers, body, signs_timestamp=True,
                    signature_headers=tuple(n.lower() for n, _ in headers))  # fmt: skip


def _teams(provider: str, body: bytes, secret: str) -> Delivery:
    key = secret.encode()
    sig = _b64(_hmac("sha256", key, body))
    return Delivery(provider, _b64(key), [("Authorization", f"HMAC {sig}")], body,
                    signature_headers=("authorization",))  # fmt: skip


def _generic(provider: str, body: bytes, secret: str) -> Delivery:
    mac = _hmac("sha512", secret, body)
    options = {"header": "X-Acme-Signature", "algorithm": "sha512", "encoding": "base64",
               "prefix": "sha512="}  # fmt: skip
    return Delivery(provider, secret, [("X-Acme-Signature", "sha512=" + _b64(mac))], body,
                    options=options, signature_headers=("x-acme-signature",))  # fmt: skip


def _zendesk(provider: str, body: bytes, secret: str) -> Delivery:
    # JavaScript's toISOString(): milliseconds and "Z".
    ts = datetime.fromtimestamp(TS, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    sig = _b64(_hmac("sha256", secret, ts, body))
    headers = [("X-Zendesk-Webhook-Signature", sig), ("X-Zendesk-Webhook-Signature-Timestamp", ts)]
    return Delivery(provider, secret, headers, body, signs_timestamp=True,
                    signature_headers=tuple(n for n, _ in headers))  # fmt: skip


def _box(provider: str, body: bytes, secret: str) -> Delivery:
    # Box signs body + timestamp once per key; here the verifier holds the
    # secondary key (mid-rotation), so the primary header cannot match.
    ts = datetime.fromtimestamp(TS, timezone(timedelta(hours=-8))).isoformat()
    headers = [
        ("BOX-DELIVERY-TIMESTAMP", ts),
        ("BOX-SIGNATURE-PRIMARY", _b64(_hmac("sha256", "new primary key", body, ts))),
        ("BOX-SIGNATURE-SECONDARY", _b64(_hmac("sha256", secret, body, ts))),
        ("BOX-SIGNATURE-VERSION", "1"),
        ("BOX-SIGNATURE-ALGORITHM", "HmacSHA256"),
    ]
    names = tuple(n for n, _ in headers if n != "BOX-SIGNATURE-PRIMARY")
    return Delivery(provider, secret, headers, body, signs_timestamp=True,
                    signature_headers=names)  # fmt: skip


def _hex_list(header: str) -> Callable[..., Delivery]:
    """PagerDuty, CircleCI: a comma list of ``v1=<hex>``, one per live key."""

    def sign(provider: str, body: bytes, secret: str) -> Delivery:
        mac = _hmac("sha256", secret, body).hex()
        value = f"v1={_hmac('sha256', 'other key', body).hex()},v1={mac}"
        return Delivery(provider, secret, [(header, value)], body, signature_headers=(header,))

    return sign


def _airship(provider: str, body: bytes, secret: str) -> Delivery:
    # Airship open channels: hex HMAC-SHA256 of "{X-UA-TIMESTAMP}:{body}".
    sig = _hmac("sha256", secret, f"{TS}:", body).hex()
    headers = [("X-UA-Signature", sig), ("X-UA-Timestamp", str(TS))]
    return Delivery(provider, secret, headers, body, signs_timestamp=True,
                    signature_headers=("x-ua-signature", "x-ua-timestamp"))  # fmt: skip


def _contentful(provider: str, body: bytes, secret: str) -> Delivery:
    # node-apps-toolkit signRequest: method, normalised path, the signed
    # headers "k:v" sorted and joined by ";", the body, joined by newlines.
    ms = str(TS * 1000)
    signed_names = "x-contentful-signed-headers,x-contentful-timestamp,x-contentful-topic"
    topic = "ContentManagement.Entry.publish"
    canonical_headers = (
        f"x-contentful-signed-headers:{signed_names};x-contentful-timestamp:{ms};"
        f"x-contentful-topic:{topic}"
    )
    # Path "/in?src=test": the query is escaped, then the whole encodeURI'd.
    path = "/in?src%253Dtest"
    sig = _hmac("sha256", secret, f"POST\n{path}\n{canonical_headers}\n", body).hex()
    headers = [
        ("X-Contentful-Signature", sig),
        ("X-Contentful-Timestamp", ms),
        ("X-Contentful-Signed-Headers", signed_names),
        ("X-Contentful-Topic", topic),
    ]
    return Delivery(provider, secret, headers, body, url=URL, signs_timestamp=True,
                    signature_headers=tuple(n for n, _ in headers))  # fmt: skip


def _docusign(provider: str, body: bytes, secret: str) -> Delivery:
    # DocuSign Connect: one X-DocuSign-Signature-<n> per active HMAC key.
    headers = [
        ("X-DocuSign-Signature-1", _b64(_hmac("sha256", "an older key", body))),
        ("X-DocuSign-Signature-2", _b64(_hmac("sha256", secret, body))),
        ("X-Authorization-Digest", "HMACSHA256"),
    ]
    return Delivery(provider, secret, headers, body,
                    signature_headers=("x-docusign-signature-2",))  # fmt: skip


def _hygraph(provider: str, body: bytes, secret: str) -> Delivery:
    # @hygraph/utils: JSON.stringify({Body, EnvironmentName, TimeStamp}).
    ms = TS * 1000
    text = body.decode("utf-8", "replace")
    document = json.dumps(
        {"Body": text, "EnvironmentName": "master", "TimeStamp": ms},
        separators=(",", ":"), ensure_ascii=False,
    )  # fmt: skip
    sig = _b64(_hmac("sha256", secret, document.encode()))
    return Delivery(provider, secret, [("gcms-signature", f"sign={sig}, env=master, t={ms}")],
                    text.encode(), signs_timestamp=True,
                    signature_headers=("gcms-signature",))  # fmt: skip


def _mandrill(provider: str, body: bytes, secret: str) -> Delivery:
    # Mandrill: the webhook URL, then each POST variable's key and value
    # sorted by key, HMAC-SHA1, base64.
    params = sorted(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True),
                    key=lambda kv: kv[0])  # fmt: skip
    sig = _b64(_hmac("sha1", secret, URL + "".join(k + v for k, v in params)))
    headers = [("X-Mandrill-Signature", sig),
               ("Content-Type", "application/x-www-form-urlencoded")]  # fmt: skip
    return Delivery(provider, secret, headers, body, url=URL,
                    signature_headers=("x-mandrill-signature", "content-type"))  # fmt: skip


def _orb(provider: str, body: bytes, secret: str) -> Delivery:
    # Orb: "v1:{X-Orb-Timestamp}:{body}", ISO 8601 without offset (UTC).
    ts = datetime.fromtimestamp(TS, UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")
    sig = _hmac("sha256", secret, f"v1:{ts}:", body).hex()
    headers = [("X-Orb-Signature", f"v1={'0' * 64} v1={sig}"), ("X-Orb-Timestamp", ts)]
    return Delivery(provider, secret, headers, body, signs_timestamp=True,
                    signature_headers=("x-orb-signature", "x-orb-timestamp"))  # fmt: skip


def _plivo(provider: str, body: bytes, secret: str) -> Delivery:
    # Plivo V3: URL without query + "?" + sorted query "k=v&.." + "." (when
    # both) + sorted POST params "kv" + "." + nonce; HMAC-SHA256, base64.
    nonce = "05429567804466091622"
    params = sorted(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    base, _, query = URL.partition("?")
    query_text = "&".join(f"{k}={v}" for k, v in sorted(parse_qsl(query)))
    signed = base
    if query_text or params:
        signed += "?" + query_text
    if query_text and params:
        signed += "."
    signed += "".join(k + v for k, v in params) + "." + nonce
    sig = _b64(_hmac("sha256", secret, signed))
    headers = [
        ("X-Plivo-Signature-V3", f"{_b64(b'x' * 32)},{sig}"),  # one per active auth token
        ("X-Plivo-Signature-V3-Nonce", nonce),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ]
    return Delivery(provider, secret, headers, body, url=URL,
                    signature_headers=("x-plivo-signature-v3", "x-plivo-signature-v3-nonce",
                                       "content-type"))  # fmt: skip


def _vmware(provider: str, body: bytes, secret: str) -> Delivery:
    # Workspace ONE event notifications: HTTP Basic with the configured
    # username and password; the policy secret is "username::password".
    credentials = _b64(f"edge:{secret}".encode())
    return Delivery(provider, f"edge::{secret}", [("Authorization", f"Basic {credentials}")],
                    body, signs_body=False, signature_headers=("authorization",))  # fmt: skip


_hub256 = _body_hmac("X-Hub-Signature-256", "sha256", "hex", "sha256=")

SIGNERS: dict[str, Callable[..., Delivery]] = {
    "aftership": _body_hmac("aftership-hmac-sha256", "sha256", "base64"),
    "airship": _airship,
    "alchemy": _body_hmac("X-Alchemy-Signature", "sha256", "hex"),
    "autodesk": _body_hmac("x-adsk-signature", "sha1", "hex", "sha1hash="),
    "bitbucket": _body_hmac("X-Hub-Signature", "sha256", "hex", "sha256="),
    "bolt": _body_hmac("X-Bolt-Hmac-Sha256", "sha256", "base64"),
    "box": _box,
    "brex": _standard("webhook-"),
    "buildkite": _stripe_like("X-Buildkite-Signature", "timestamp", "signature"),
    "calendly": _stripe_like("Calendly-Webhook-Signature"),
    "castle": _body_hmac("X-Castle-Signature", "sha256", "base64"),
    "chargify": _body_hmac("X-Chargify-Webhook-Signature-Hmac-Sha-256", "sha256", "hex"),
    "circleci": _hex_list("circleci-signature"),
    "clearbit": _body_hmac("X-Request-Signature", "sha1", "hex", "sha1="),
    "clerk": _standard("svix-"),
    "coinbase": _body_hmac("X-CC-Webhook-Signature", "sha256", "hex"),
    "contentful": _contentful,
    "docusign": _docusign,
    "dropbox": _body_hmac("X-Dropbox-Signature", "sha256", "hex"),
    "facebook_graph_api": _hub256,
    "facebook_messenger": _hub256,
    "frameio": _slack_like("X-Frameio-Signature", "X-Frameio-Request-Timestamp", "v0"),
    "generic": _generic,
    "github": _hub256,
    "gitlab": _token("X-Gitlab-Token"),
    "go1": _stripe_like("Go1-Signature"),
    "graphcms": _hygraph,
    "heroku": _body_hmac("Heroku-Webhook-Hmac-SHA256", "sha256", "base64"),
    "hostedhooks": _stripe_like("HostedHooks-Signature", "t", "s"),
    "hubspot": _hubspot,
    "instagram": _hub256,
    "intercom": _body_hmac("X-Hub-Signature", "sha1", "hex", "sha1="),
    "jira": _body_hmac("X-Hub-Signature", "sha256", "hex", "sha256="),
    "launch_darkly": _body_hmac("X-LD-Signature", "sha256", "hex"),
    "linear": _body_hmac("Linear-Signature", "sha256", "hex"),
    "mailchimp": _mandrill,
    "mailgun": _mailgun,
    "microsoft_teams": _teams,
    "modern_treasury": _body_hmac("X-Signature", "sha256", "hex"),
    "mongodb": _body_hmac("X-MMS-Signature", "sha1", "base64"),
    "mux": _stripe_like("Mux-Signature"),
    "okta": _token("Authorization"),
    "orb": _orb,
    "orbit": _token("X-Orbit-Signature"),
    "pagerduty": _hex_list("X-PagerDuty-Signature"),
    "pinwheel": _slack_like("X-Pinwheel-Signature", "X-Timestamp", "v2"),
    "plivo": _plivo,
    "pusher": _body_hmac("X-Pusher-Signature", "sha256", "hex"),
    "segment": _body_hmac("X-Signature", "sha1", "hex"),
    "sendgrid": _sendgrid,
    "sentry": _body_hmac("Sentry-Hook-Signature", "sha256", "hex"),
    "shopify": _body_hmac("X-Shopify-Hmac-Sha256", "sha256", "base64"),
    "signal_sciences": _body_hmac("X-SigSci-Signature", "sha256", "hex"),
    "slack": _slack_like("X-Slack-Signature", "X-Slack-Request-Timestamp", "v0"),
    "sonatype": _body_hmac("X-Nexus-Webhook-Signature", "sha1", "hex"),
    "square": _square,
    "stripe": _stripe_like("Stripe-Signature"),
    "svix": _standard("svix-"),
    "terraform": _body_hmac("X-TFE-Notification-Signature", "sha512", "hex"),
    "tiktok": _stripe_like("TikTok-Signature", "t", "s"),
    "trendmicro_conformity": _body_hmac("X-Conformity-Signature", "sha256", "hex"),
    "twilio": _twilio,
    "twitter": _body_hmac("X-Twitter-Webhooks-Signature", "sha256", "base64", "sha256="),
    "typeform": _body_hmac("Typeform-Signature", "sha256", "base64", "sha256="),
    "vmware": _vmware,
    "webex": _body_hmac("X-Spark-Signature", "sha1", "hex"),
    "whatsapp": _hub256,
    "worldline": _body_hmac("X-GCS-Signature", "sha256", "base64"),
    "xero": _body_hmac("x-xero-signature", "sha256", "base64"),
    "zendesk": _zendesk,
    "zoom": _slack_like("x-zm-signature", "x-zm-request-timestamp", "v0"),
}


def sign(provider: str, body: bytes, secret: str = SECRET) -> Delivery:
    """A delivery of `body` from `provider`, signed with `secret`."""
    delivery = SIGNERS[provider](provider, body, secret)
    names = tuple(n.lower() for n in delivery.signature_headers)
    return replace(delivery, signature_headers=names)
