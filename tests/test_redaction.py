"""`edgeward.redaction`: what the traffic inspector keeps of credentials."""

from __future__ import annotations

import pytest

from edgeward.redaction import MARK, Redactor, secret_name

R = MARK.encode()


def test_credential_headers_keep_their_name_and_lose_their_value() -> None:
    redact = Redactor()
    kept = dict(
        redact.headers(
            [
                (b"authorization", b"Bearer eyJhbGciOi.secret.sig"),
                (b"proxy-authorization", b"Basic YWxpY2U6cGFzc3dvcmQ="),
                (b"cookie", b"session=abc; theme=dark"),
                (b"set-cookie", b"session=abc; HttpOnly"),
                (b"x-api-key", b"k-123456"),
                (b"x-hub-signature-256", b"sha256=0123abcd"),
                (b"stripe-signature", b"t=1,v1=ff"),
                (b"x-slack-request-timestamp", b"1700000000"),
                (b"content-type", b"application/json"),
                (b"x-auth-token", b"tok"),
            ]
        )
    )
    assert kept[b"authorization"] == b"Bearer " + R
    assert kept[b"proxy-authorization"] == b"Basic " + R
    for name in (b"cookie", b"set-cookie", b"x-api-key", b"x-auth-token"):
        assert kept[name] == R, name
    assert kept[b"x-hub-signature-256"] == R and kept[b"stripe-signature"] == R
    assert kept[b"x-slack-request-timestamp"] == b"1700000000"
    assert kept[b"content-type"] == b"application/json"
    assert Redactor().header(b"Authorization", b"opaque") == R  # no scheme: all of it


def test_secret_looking_query_parameters_and_userinfo() -> None:
    redact = Redactor()
    target = redact.target(b"/hook?id=7&token=abc&api_key=k&sig=s&design=blue&code=x#frag")
    assert (
        target
        == b"/hook?id=7&token="
        + R
        + b"&api_key="
        + R
        + b"&sig="
        + R
        + b"&design=blue&code="
        + R
        + b"#frag"
    )
    assert (
        redact.target(b"http://alice:hunter2@a.example/x") == b"http://alice:" + R + b"@a.example/x"
    )
    assert redact.target(b"/plain/path") == b"/plain/path"
    assert redact.target(b"/p?flag&password=") == b"/p?flag&password=" + R


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("token", True),
        ("access_token", True),
        ("X-Api-Key", True),
        ("client_secret", True),
        ("password", True),
        ("sig", True),
        ("webhook-signature", True),
        ("page", False),
        ("design", False),
        ("content-length", False),
        ("user", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert secret_name(name) is secret


def test_vault_values_are_redacted_anywhere_as_is_or_percent_encoded() -> None:
    redact = Redactor(["s3cr3t value/+", "abc", "s3cr3t"])  # "abc": too short to look for
    body = b'{"note": "the key is s3cr3t value/+ and s3cr3t%20value%2F%2B", "abc": 1}'
    out = redact.body(body, b"text/plain")
    assert b"s3cr3t" not in out and out.count(R) == 2 and b'"abc": 1' in out
    assert redact.header(b"x-note", b"carry s3cr3t here") == b"carry " + R + b" here"
    assert redact.values(b"a s3cr3t value/+ b") == b"a " + R + b" b"  # longest first: whole
    assert redact.values(b"s3cr3t+value%2F%2B") == R  # as a form encodes it
    assert redact.text("deny (s3cr3t)") == f"deny ({MARK})"


def test_form_and_json_bodies_lose_their_secret_fields() -> None:
    redact = Redactor()
    form = redact.body(b"user=al&password=p%40ss&remember=1", b"application/x-www-form-urlencoded")
    assert form == b"user=al&password=" + R + b"&remember=1"
    data = redact.body(
        b'{"user": "al", "api_token" : "t-1\\"2", "nested": {"secret": "x"}, "n": 1}',
        b"application/json; charset=utf-8",
    )
    assert (
        data
        == b'{"user": "al", "api_token" : "' + R + b'", "nested": {"secret": "' + R + b'"}, "n": 1}'
    )
    assert redact.body(b"password=x", b"text/plain") == b"password=x"  # not a form: kept
