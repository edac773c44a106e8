"""Writes the seed corpora of the fuzz targets, one directory per target
under CORPUS_ROOT: `cel` (the expressions of the public conformance data,
policy-like rules, hostile shapes), `template`, `ipnet`, `webhooks` (signed
requests of a few providers, so the fuzzer starts past the header checks)
`value` (byte programs building nested values) and `h2` (what HTTP/2
clients send after the preface: settings, requests with and without
Huffman, a body, a reset, a ping). Usage:
python seed_corpus.py CORPUS_ROOT (the corpora are not committed)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE = ROOT / "tests" / "expr" / "data" / "cel_conformance.json"

EXTRA = [
    "req.url.path.startsWith('/api/') && req.method in ['GET', 'POST']",
    "req.headers.exists(k, k.startsWith('x-')) || has(req.url.query)",
    "inCidrRanges('10.1.2.3', ['10.0.0.0/8', '::1/128'])",
    "timestamp('2024-01-01T00:00:00Z').getHours('America/New_York')",
    "'%s-%d'.format([s, x]) + string(l.map(v, type(v)))",
    "hello ${req.method} ${x + 1} $${literal}",
    "(" * 40 + "1" + ")" * 40,
    "!" * 100 + "true",
    "a" + ".b" * 80,
    "[" * 70 + "]" * 70,
    "lists.range(100).map(i, lists.range(100).map(j, i * j))",
]


TEMPLATES = [
    "plain text, no expression",
    "hello ${s} ${x + 1} $${literal} $$${x}",
    "${ {'a': 1}['a'] } and ${ '}' } and ${l}",
    "${'%s|%d'.format([s, x])}${big.size()}",
    "line one\n  ${x ++}",
    "${",
    "${}",
    "${" * 30,
    "${l.map(v, string(v)).join('-')}${[l, [l]]}",
]

IPNET = [
    "10.1.2.3\n10.0.0.0/8\n!10.1.0.0/16",
    "::ffff:10.1.2.3\n10.0.0.0/8\n::/0\n!::ffff:10.1.0.0/112",
    "2001:db8::1\n2001:db8::/32\n2001:db8::/48\n2001:db8::1/128",
    "192.168.0.1\n192.168.0.1\n0.0.0.0/0\n!192.168.0.0/24\n10.0.0.1/8",
    "fe80::1%eth0\n::1/128\n1.2.3.4/33\n01.2.3.4\n1.2.3",
    "0.0.0.0\n0.0.0.0/0\n!0.0.0.0/32\n::/0",
]


def _hmac(secret: str, message: str, algorithm: str = "sha256") -> bytes:
    return hmac.new(secret.encode(), message.encode(), algorithm).digest()


def _webhook(
    provider: str,
    secret: str,
    headers: dict[str, str],
    body: str,
    *,
    url: str = "-",
    options: tuple[str, ...] = (),
) -> str:
    """The input format of fuzz_targets/webhooks.rs."""
    head = [provider, secret, url, *(f"{k}: {v}" for k, v in headers.items())]
    head += [f"@{option}" for option in options]
    return "\n".join(head) + "\n\n" + body


def webhook_seeds() -> list[str]:
    secret, body, now = "whsec_fuzzing_secret", '{"event":"ping","id":1}', "1700000000"
    sig = _hmac(secret, body)
    return [
        _webhook("github", secret, {"X-Hub-Signature-256": "sha256=" + sig.hex()}, body),
        _webhook("github", secret, {"x-hub-signature-256": "sha256=00"}, body),
        _webhook(
            "stripe",
            secret,
            {"Stripe-Signature": f"t={now},v1=" + _hmac(secret, f"{now}.{body}").hex()},
            body,
        ),
        _webhook(
            "slack",
            secret,
            {
                "X-Slack-Request-Timestamp": now,
                "X-Slack-Signature": "v0=" + _hmac(secret, f"v0:{now}:{body}").hex(),
            },
            body,
        ),
        _webhook(
            "shopify", secret, {"X-Shopify-Hmac-Sha256": base64.b64encode(sig).decode()}, body
        ),
        _webhook(
            "generic",
            secret,
            {"X-Signature": _hmac(secret, body, "sha1").hex()},
            body,
            options=("algorithm=sha1", "header=x-signature"),
        ),
        _webhook("twilio", secret, {"X-Twilio-Signature": "abc="}, "a=1&b=2", url="https://h/x"),
        _webhook("svix", "whsec_" + base64.b64encode(b"k" * 24).decode(), {}, body),
        _webhook("sendgrid", "not a key", {}, body),
        _webhook("nosuchprovider", secret, {}, body),
    ]


def value_seeds() -> list[bytes]:
    return [
        bytes([2, 7, 5, 3]) + b"abc" + bytes([9, 2]),  # [7, "abc"]
        bytes([5, 1]) + b"k" + bytes([2, 1, 11, 1]),  # {"k": 1}
        bytes([5, 1]) + b"k" + bytes([2, 1, 12, 1, 13, 255, 13, 255]),  # deep host map
        bytes([5, 31]) + b"x" * 31 + bytes([14] * 12 + [9, 7] * 6),  # shared strings
        bytes([0, 1, 17, 4, 9, 6, 3]) + b"\xff\x00a" + bytes([7, 200, 8, 5, 9, 7]),
        bytes([13, 255]) * 3,
    ]


def h2_seeds() -> list[bytes]:
    import h2.config
    import h2.connection

    seeds = []
    for huffman in (True, False):
        client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        client.initiate_connection()
        client.encoder.huffman = huffman
        head = [(":method", "GET"), (":path", "/small?q=1"), (":scheme", "http"),
                (":authority", "example.com"), ("cookie", "a=b"), ("user-agent", "fuzz")]  # fmt: skip
        client.send_headers(1, head, end_stream=True)
        client.send_headers(3, [(":method", "POST"), *head[1:]])
        client.send_data(3, b"body", end_stream=True)
        client.send_headers(5, head)
        client.reset_stream(5)
        client.ping(b"12345678")
        wire = client.data_to_send()[24:]  # the target sends the preface itself
        seeds.append(wire)
    return seeds


def write(directory: Path, seeds: list[bytes]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for raw in seeds:
        (directory / hashlib.sha1(raw).hexdigest()).write_bytes(raw)
    print(f"{len(seeds):5} seeds in {directory}")


def main(root: Path) -> None:
    sources = list(EXTRA)
    data = json.loads(CONFORMANCE.read_text())
    sources += [case["expr"] for cases in data["files"].values() for case in cases]
    write(root / "cel", [s.encode() for s in sources])
    write(root / "template", [t.encode() for t in TEMPLATES] + [s.encode() for s in EXTRA])
    write(root / "ipnet", [t.encode() for t in IPNET])
    write(root / "webhooks", [w.encode() for w in webhook_seeds()])
    write(root / "value", value_seeds())
    write(root / "h2", h2_seeds())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
