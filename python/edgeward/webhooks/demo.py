"""``edgeward demo``: sign a sample webhook the way GitHub and Stripe do,
then verify it, a tampered copy and a replayed one with the active backend."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

from edgeward import native

SECRET = "demo-secret-not-for-production"
BODY = b'{"action":"opened","issue":{"number":1347,"title":"Found a bug"}}'


def _github_headers(body: bytes) -> dict[str, str]:
    mac = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={mac}", "X-GitHub-Event": "issues"}


def _stripe_headers(body: bytes, ts: int) -> dict[str, str]:
    mac = hmac.new(SECRET.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={ts},v1={mac}"}


def run(out: Callable[[str], object] = print) -> int:
    """Print the backend and the verdicts; 0 when each one is as expected."""
    out(f"edgeward native backend: {native.BACKEND}")
    now = int(time.time())
    tampered = BODY.replace(b"1347", b"1348")
    tolerance = native.DEFAULT_TOLERANCE_S["stripe"]
    cases = [
        ("github delivery", "github", _github_headers(BODY), BODY, True),
        ("github, body tampered", "github", _github_headers(BODY), tampered, False),
        ("stripe delivery", "stripe", _stripe_headers(BODY, now), BODY, True),
        ("stripe, replayed 1 h later", "stripe", _stripe_headers(BODY, now - 3600), BODY, False),
    ]
    as_expected = True
    for label, provider, headers, body, expected in cases:
        ok, reason = native.explain_webhook(
            provider, SECRET, headers, body, now=now, tolerance_s=tolerance
        )
        as_expected &= ok is expected
        out(f"  {label:<28} {'verified' if ok else 'rejected':<9} ({reason})")
    out(f"webhook verification: {len(native.PROVIDERS)} providers")
    return 0 if as_expected else 1
