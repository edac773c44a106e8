"""Hypothesis: the Rust module and the pure-Python twin give the same
verdict, the same reason and the same error kind for every provider, on
signed deliveries damaged at random."""

from __future__ import annotations

import json
import re
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeward.webhooks import reference

from .signing import SIGNERS, TS, sign

native: ModuleType = pytest.importorskip("edgeward_native")


def outcome(backend: ModuleType, provider: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    try:
        return ("verdict", *backend.explain_webhook(provider, *args, **kwargs))
    except (ValueError, TypeError) as exc:
        return ("error", type(exc).__name__)


def agree(provider: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    expected = outcome(reference, provider, *args, **kwargs)
    assert outcome(native, provider, *args, **kwargs) == expected
    return expected


REASON = re.compile(
    r"ok|signature mismatch|token mismatch|body hash mismatch|malformed body"
    r"|malformed timestamp|stale timestamp|timestamp in the future"
    r"|(missing|duplicate|malformed) header [a-z0-9-]+"
)
header_text = st.text(st.characters(codec="latin-1"), max_size=40)
# Values near the real ones: fragments of signatures, separators, digits.
near_values = st.one_of(
    header_text,
    st.lists(st.sampled_from(["v1=", "v0=", "t=", "s=", "sha256=", ",", " ", "=", "v1,",
                              "HMAC ", "1700000000", "abc", "00", "==", "%2F", "whsec_"]),
             max_size=8).map("".join),
)  # fmt: skip


@st.composite
def damaged_deliveries(draw: st.DrawFn, provider: str) -> dict[str, Any]:
    body = draw(st.binary(max_size=200))
    secret = draw(st.text(min_size=1, max_size=30).filter(lambda s: s.strip()))
    delivery = sign(provider, body, secret=secret)
    headers = list(delivery.headers)
    body_out, secret_out = delivery.body, delivery.secret
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["drop", "dup", "value", "flip", "case", "body", "secret"]))
        if kind == "body":
            body_out = draw(st.binary(max_size=200))
        elif kind == "secret":
            secret_out = draw(st.one_of(near_values, st.just(secret)).filter(bool))
        elif headers:
            i = draw(st.integers(0, len(headers) - 1))
            name, value = headers[i]
            if kind == "drop":
                del headers[i]
            elif kind == "dup":
                headers.append((name, draw(st.one_of(st.just(value), near_values))))
            elif kind == "value":
                headers[i] = (name, draw(near_values))
            elif kind == "flip" and value:
                j = draw(st.integers(0, len(value) - 1))
                headers[i] = (name, value[:j] + draw(st.sampled_from("0aA=,+/ ")) + value[j + 1 :])
            elif kind == "case":
                headers[i] = (draw(st.sampled_from([name.upper(), name.lower(), name])), value)
    skew = draw(st.one_of(st.just(0.0), st.floats(-400, 400), st.integers(-(10**12), 10**12)))
    return {
        "args": (secret_out, headers, body_out),
        "kwargs": {"url": delivery.url, "now": TS + skew, "options": delivery.options,
                   "tolerance_s": draw(st.sampled_from([300, 180, 0, 1e9]))},
    }  # fmt: skip


# 51 providers: a third of the profile's examples each keeps CI near 30 s.
@pytest.mark.parametrize("provider", sorted(SIGNERS))
@settings(max_examples=max(50, settings.default.max_examples // 3))
@given(data=st.data())
def test_backends_agree_on_damaged_deliveries(provider: str, data: st.DataObject) -> None:
    case = data.draw(damaged_deliveries(provider))
    result = agree(provider, *case["args"], **case["kwargs"])
    if result[0] == "verdict":
        # Reasons come from a fixed vocabulary (plus header names): no room
        # for the secret or any other request data.
        assert REASON.fullmatch(result[2]), result[2]


form_text = st.text(st.sampled_from("ab=&+%2F41é ~\x00\xff"), max_size=40)
urls = st.builds(
    "{}://{}{}{}/p{}".format,
    st.sampled_from(["https", "http", "HTTPS", "ftp"]),
    st.sampled_from(["", "user:pw@", "a@b@"]),
    st.sampled_from(["example.com", "[::1]", "[::1]:x", "h"]),
    st.sampled_from(["", ":443", ":80", ":8443", ":", ":x1"]),
    st.sampled_from(["", "?a=1", "?bodySHA256=00", "?x=1#frag", "?a=%2F&b"]),
)


@given(body=form_text.map(str.encode), url=urls, content_type=st.sampled_from(
    ["application/x-www-form-urlencoded", "Application/X-WWW-Form-Urlencoded; charset=utf-8",
     "application/json", "text/plain"]))  # fmt: skip
def test_backends_agree_on_twilio_forms_and_urls(body: bytes, url: str, content_type: str) -> None:
    delivery = sign("twilio", body)
    headers = [("X-Twilio-Signature", delivery.headers[0][1]), ("Content-Type", content_type)]
    agree("twilio", delivery.secret, headers, body, url=url)
    for variant in reference._port_variants(url):
        # Signed with the URL as Twilio saw it, verified against the edge's URL.
        agree("twilio", delivery.secret, headers, body, url=variant)


@given(url=urls, method=st.sampled_from(["POST", "GET", "put"]))
def test_backends_agree_on_hubspot_and_square_urls(url: str, method: str) -> None:
    for provider in ("hubspot", "square"):
        delivery = sign(provider, b"{}")
        agree(provider, delivery.secret, delivery.headers, b"{}", url=url, method=method, now=TS)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(
    signature=st.dictionaries(
        st.sampled_from(["timestamp", "token", "signature", "x"]), json_values, max_size=4
    ),
    raw=st.one_of(st.none(), st.text(max_size=30)),
)
def test_backends_agree_on_mailgun_bodies(signature: dict[str, Any], raw: str | None) -> None:
    body = raw.encode() if raw is not None else json.dumps({"signature": signature}).encode()
    agree("mailgun", "key", [], body, now=TS)
    agree("mailgun", "key", [("Content-Type", "application/x-www-form-urlencoded")], body, now=TS)


@given(value=st.lists(st.one_of(near_values, st.sampled_from(
    [f"t={TS}", f"timestamp={TS}", "v1=" + "0" * 64, f"t={TS}0", "t=-1", "t=1e9"])),
    max_size=6).map(",".join))  # fmt: skip
def test_backends_agree_on_key_value_headers(value: str) -> None:
    for provider, header in (
        ("stripe", "Stripe-Signature"),
        ("buildkite", "X-Buildkite-Signature"),
    ):
        agree(provider, "whsec_x", [(header, value)], b"{}", now=TS)


two = st.integers(0, 99).map("{:02d}".format)
rfc3339_texts = st.one_of(
    st.builds(
        "{}-{}-{}{}{}:{}:{}{}{}".format,
        st.sampled_from(["0000", "1970", "2000", "2021", "2100", "9999", "+202", "20a1"]),
        two, two, st.sampled_from(["T", "t", " ", "TT"]), two, two, two,
        st.sampled_from(["", ".5", ".123456789", ".1234567890", ".", ".x"]),
        st.sampled_from(["Z", "z", "", "+01:30", "-07:00", "+24:00", "-00:60", "+0100", "Zx"]),
    ),
    st.text(st.sampled_from("0123456789-:TZ.+"), max_size=30),
)  # fmt: skip


@given(ts=rfc3339_texts, skew=st.sampled_from([0, 1e12]))
def test_backends_agree_on_rfc3339_timestamps(ts: str, skew: float) -> None:
    for provider, header in (("zendesk", "x-zendesk-webhook-signature-timestamp"),
                             ("box", "box-delivery-timestamp")):  # fmt: skip
        delivery = sign(provider, b"{}")
        headers = [(n, ts if n.lower() == header else v) for n, v in delivery.headers]
        agree(provider, delivery.secret, headers, b"{}", now=1.6e9, tolerance_s=skew)
    delivery = sign("orb", b"{}")  # ISO 8601, the offset optional
    headers = [(n, ts if n.lower() == "x-orb-timestamp" else v) for n, v in delivery.headers]
    agree("orb", delivery.secret, headers, b"{}", now=1.6e9, tolerance_s=skew)


paths = st.text(st.sampled_from("ab/?&=#%2F é~;+\x00"), max_size=20)


@given(path=paths, method=st.sampled_from(["POST", "GET", "put"]),
       signed=st.lists(st.sampled_from(["x-contentful-topic", "X-Contentful-Topic", "",
                                        "x-contentful-timestamp", " x-a", "x-a", "é"]),
                       max_size=4).map(",".join),
       extra=st.lists(st.tuples(st.sampled_from(["x-a", "X-A", "x-contentful-topic", "é"]),
                                header_text), max_size=3))  # fmt: skip
def test_backends_agree_on_contentful_requests(
    path: str, method: str, signed: str, extra: list[tuple[str, str]]
) -> None:
    delivery = sign("contentful", b"{}")
    headers = [
        (n, signed if n.lower() == "x-contentful-signed-headers" else v)
        for n, v in delivery.headers
    ]
    agree("contentful", delivery.secret, [*headers, *extra], b"{}",
          url="https://h.example" + path, method=method, now=TS)  # fmt: skip


@given(
    url=urls,
    body=form_text.map(str.encode),
    method=st.sampled_from(["POST", "GET", "get"]),
    content_type=st.sampled_from(["application/x-www-form-urlencoded", "text/plain"]),
)
def test_backends_agree_on_plivo_and_mandrill_urls(
    url: str, body: bytes, method: str, content_type: str
) -> None:
    for provider in ("plivo", "mailchimp"):
        delivery = sign(provider, body)
        headers = [(n, content_type if n.lower() == "content-type" else v)
                   for n, v in delivery.headers]  # fmt: skip
        agree(provider, delivery.secret, headers, body, url=url, method=method, now=TS)
        agree(provider, delivery.secret, headers, body, url=delivery.url, method=method, now=TS)


@given(body=st.one_of(st.binary(max_size=40), st.text(max_size=40).map(str.encode)),
       env=header_text,
       t=st.sampled_from([str(TS * 1000), "", "1e3", str(TS), "0" * 19]))  # fmt: skip
def test_backends_agree_on_hygraph_documents(body: bytes, env: str, t: str) -> None:
    delivery = sign("graphcms", body)
    sig = delivery.headers[0][1].split(", ")[0]
    for value in (f"{sig}, env={env}, t={t}", delivery.headers[0][1]):
        agree("graphcms", delivery.secret, [("gcms-signature", value)], body, now=TS,
              tolerance_s=1e12)  # fmt: skip


@given(names=st.lists(st.sampled_from(["X-DocuSign-Signature-1", "x-docusign-signature-2",
                                       "X-DOCUSIGN-SIGNATURE-", "x-docusign-signature-1x",
                                       "x-docusign-signature-١", "X-DocuSign-Signature-01"]),
                      max_size=4))  # fmt: skip
def test_backends_agree_on_docusign_header_sets(names: list[str]) -> None:
    delivery = sign("docusign", b"{}")
    good = delivery.headers[1][1]
    agree("docusign", delivery.secret, [(n, good) for n in names], b"{}")
