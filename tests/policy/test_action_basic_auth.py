"""basic-auth: the sans-IO action and the running edge."""

from __future__ import annotations

import base64
import dataclasses
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.policy.e2e import BACKENDS, echo_headers, events, running_edge, serve
from tests.policy.helpers import load, load_error, one, request

from edgeward.policy.actions import basic_auth

POLICY = """
on_http_request:
  - name: login
    actions:
      - type: basic-auth
        config:
          realm: staff area
          credentials: ["alice:correct horse", "bob:pa:ss:word1"]
  - name: tag
    actions:
      - type: add-headers
        config:
          headers:
            x-user: "${actions.ngrok.basic_auth.credentials.username}"
"""


def basic(credential: str | bytes) -> tuple[str, str]:
    raw = credential.encode() if isinstance(credential, str) else credential
    return ("Authorization", "Basic " + base64.b64encode(raw).decode())


def test_valid_credentials_are_forwarded_with_the_username() -> None:
    h = load(POLICY)
    r = request(h, headers=[basic("alice:correct horse")])
    assert r.forwarded is not None and r.upstream_header("x-user") == ["alice"]
    # The header goes on unchanged (remove-headers can drop it).
    assert r.upstream_header("authorization") == [
        "Basic " + base64.b64encode(b"alice:correct horse").decode()
    ]
    assert h.events == []


def test_the_first_colon_splits_username_and_password() -> None:
    h = load(POLICY)
    assert request(h, headers=[basic("bob:pa:ss:word1")]).forwarded is not None
    assert request(h, headers=[basic("bob:pa")]).status == 401


def test_missing_credentials_get_a_challenge() -> None:
    h = load(POLICY)
    r = request(h)
    assert r.status == 401 and r.forwarded is None
    assert r.header("www-authenticate") == ['Basic realm="staff area", charset="UTF-8"']
    assert r.header("edgeward-error") == [] and b"ERR_EDGEWARD_3401" in r.body
    (event,) = h.events
    assert event.action == "basic-auth" and event.status == 401
    assert event.error_code == "ERR_EDGEWARD_3401" and "no Basic credentials" in event.reason


def test_default_realm_is_ngrok() -> None:
    h = load(
        'on_http_request: [{actions: [{type: basic-auth, config: {credentials: ["a:12345678"]}}]}]'
    )
    assert request(h).header("www-authenticate") == ['Basic realm="ngrok", charset="UTF-8"']


@pytest.mark.parametrize(
    "headers",
    [
        [basic("alice:wrong password")],
        [basic("mallory:correct horse")],
        [basic("alice")],  # no colon
        [("Authorization", "Basic not*base64")],
        [("Authorization", "Basic")],
        [basic("alice:correct horse"), basic("alice:correct horse")],  # twice: ambiguous
        [("Authorization", "Bearer abc.def.ghi")],
        [basic(b"alice:\xffcorrect horse")],
    ],
)
def test_wrong_or_malformed_credentials_are_refused(headers: list[tuple[str, str]]) -> None:
    h = load(POLICY)
    r = request(h, headers=headers)
    assert r.status == 401 and r.forwarded is None


def test_scheme_is_case_insensitive() -> None:
    h = load(POLICY)
    header = "bAsIc " + base64.b64encode(b"alice:correct horse").decode()
    assert request(h, headers=[("Authorization", header)]).forwarded is not None


def test_events_and_results_never_hold_a_password() -> None:
    h = load(
        POLICY.replace("add-headers", "log").replace(
            'headers:\n            x-user: "${actions.ngrok.basic_auth.credentials.username}"',
            'metadata: {auth: "${actions.ngrok.basic_auth}"}',
        )
    )
    request(h, headers=[basic("alice:correct horse")])
    request(h, headers=[basic("alice:guessed-password")])
    text = "\n".join(e.to_json() for e in h.events)
    assert "alice" in text  # who tried is useful to an auditor...
    assert "correct horse" not in text and "guessed-password" not in text  # ...what, never


def test_results_describe_the_attempt() -> None:
    h = load(
        """
        on_http_request:
          - actions:
              - type: basic-auth
                config: {credentials: ["alice:correct horse"], enforce: false}
          - expressions: ["!actions.ngrok.basic_auth.credentials.authorized"]
            actions:
              - type: set-vars
                config: {vars: [{c: "${actions.ngrok.basic_auth.credentials}"}]}
              - type: custom-response
                config:
                  status_code: 200
                  body: "${vars.c.presented}/${vars.c.username}"
        """
    )
    assert request(h).body == b"false/"
    assert request(h, headers=[basic("eve:whatever-1")]).body == b"true/eve"
    assert request(h, headers=[basic("alice:correct horse")]).forwarded is not None
    assert h.events[0].verdict == "respond"  # the custom response, not a 401


def test_every_credential_is_compared_without_early_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The action's own comparison, on the engine (the native phase runner
    compares in Rust: `edgeward_core::basic_auth::check`, `subtle`)."""
    calls: list[int] = []
    real = basic_auth.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(basic_auth.hmac, "compare_digest", counting)
    creds = ", ".join(f'"user{i}:password{i}"' for i in range(10))
    h = load(one("basic-auth", f"credentials: [{creds}]"))
    h.policy._request = dataclasses.replace(h.policy._request, runner=None)
    for attempt in ("user0:password0", "user9:password9", "user3:nope-nope", "nobody:nothing!"):
        calls.clear()
        request(h, headers=[basic(attempt)])
        assert len(calls) == 20, attempt  # user and password digest, for all ten


def test_interpolated_credentials() -> None:
    h = load(
        """
        on_http_request:
          - actions:
              - type: set-vars
                config: {vars: [{who: carol}, {pw: "s3cret-pw"}]}
              - type: basic-auth
                config:
                  credentials:
                    - "${vars.who}:${vars.pw}"
                    - "dave-${vars.who}:literal-password"
                    - "${vars.who + ':whole-credential'}"
        """
    )
    for good in ("carol:s3cret-pw", "dave-carol:literal-password", "carol:whole-credential"):
        assert request(h, headers=[basic(good)]).forwarded is not None, good
    assert request(h, headers=[basic("carol:literal-password")]).status == 401


def test_interpolated_username_with_a_colon_fails_closed() -> None:
    h = load(
        """
        on_http_request:
          - actions:
              - type: basic-auth
                config: {credentials: ["${'a:b'}:password-1"]}
        """
    )
    r = request(h, headers=[basic("a:b:password-1")])
    assert r.status == 500 and r.forwarded is None
    (event,) = h.events
    assert event.error_code == "ERR_EDGEWARD_2253" and "credentials[0]" in event.reason
    assert "password-1" not in event.to_json()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('credentials: ["alice:short"]', "8 to 128 characters, not 5"),
        (f'credentials: ["alice:{"x" * 129}"]', "not 129"),
        ('credentials: ["alice-no-colon"]', "must be 'username:password'"),
        ('credentials: [":password-1"]', "username is empty"),
        ('credentials: ["al\\tice:password-1"]', "control characters"),
        ("credentials: []", "at least 1"),
        ("credentials: [" + ", ".join(f'"u{i}:password-1"' for i in range(11)) + "]", "at most 10"),
        ("realm: x", "missing required field 'credentials'"),
        ('credentials: ["a:password-1"], realm: "caf\u00e9"', "printable ASCII"),
        ('credentials: ["a:password-1"], realm: \'say "hi"\'', "printable ASCII"),
        (f'credentials: ["a:password-1"], realm: {"r" * 129}', "longer than 128"),
        ('credentials: ["${vars.user}password"]', "literal ':'"),
        ('credentials: ["${vars.user}:short"]', "not 5"),
        ('credentials: ["a:password-1"], enforce: maybe', "true or false"),
        ('credentials: ["a:password-1"], user: x', "unknown field 'user'"),
    ],
)
def test_load_errors(config: str, message: str) -> None:
    err = load_error(
        f"""
        on_http_request:
          - actions:
              - type: basic-auth
                config: {{{config}}}
        """
    )
    assert message in str(err)
    assert "policy.yml:5:" in str(err) or "policy.yml:6:" in str(err)  # located


def test_credentials_as_mappings_are_accepted_with_a_warning() -> None:
    h = load(
        """
        on_http_request:
          - actions:
              - type: basic-auth
                config:
                  credentials:
                    - {username: user1, password: password123}
        """
    )
    assert any("username:password" in w.message for w in h.policy.warnings)
    assert request(h, headers=[basic("user1:password123")]).forwarded is not None


def test_only_in_the_request_phase() -> None:
    err = load_error(one("basic-auth", 'credentials: ["a:password1"]', phase="on_http_response"))
    assert "on_http_response" in str(err)


credential_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters=':"\\$')
)


@given(
    st.lists(
        st.tuples(
            credential_text.filter(bool), credential_text.filter(lambda p: 8 <= len(p) <= 128)
        ),
        min_size=1,
        max_size=10,
    ),
    st.data(),
)
def test_authorized_exactly_for_a_listed_pair(
    pairs: list[tuple[str, str]], data: st.DataObject
) -> None:
    listed = json.dumps([f"{u}:{p}" for u, p in pairs])
    h = load(
        f"on_http_request: [{{actions: [{{type: basic-auth, config: {{credentials: {listed}}}}}]}}]"
    )
    user = data.draw(st.one_of(st.sampled_from([u for u, _ in pairs]), credential_text))
    password = data.draw(st.one_of(st.sampled_from([p for _, p in pairs]), credential_text))
    r = request(h, headers=[basic(f"{user}:{password}")])
    assert (r.forwarded is not None) is ((user, password) in pairs)


# --- end to end ---------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def edge(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[object]:
    if request.param == "rust":
        pytest.importorskip("edgeward_native")
    with serve({"/headers": echo_headers}) as upstream:
        directory = tmp_path_factory.mktemp(f"basic-auth-{request.param}")
        with running_edge(directory, POLICY, upstream.url, request.param) as running:
            yield running


def test_edge_with_curl_and_httpx(edge: object) -> None:
    url = edge.url("/headers")  # type: ignore[attr-defined]
    anonymous = httpx.get(url)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Basic realm="staff area", charset="UTF-8"'
    assert anonymous.headers["edgeward-error"] == "ERR_EDGEWARD_3401"
    assert "edgeward-request-id" in anonymous.headers

    ok = httpx.get(url, auth=("alice", "correct horse"))
    assert ok.status_code == 200
    seen = dict(ok.json()["headers"])
    assert seen["x-user"] == "alice" and seen["authorization"].startswith("Basic ")

    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", "bob:pa:ss:word1", url],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    assert out.stdout == "200"
    assert httpx.get(url, auth=("alice", "tr0ub4dor&3")).status_code == 401

    logged = events(edge)  # type: ignore[arg-type]
    assert [e["status"] for e in logged] == [401, 401]
    text = Path(edge.log).read_text()  # type: ignore[attr-defined]
    assert "tr0ub4dor" not in text and "correct horse" not in text


def test_escaped_interpolation_is_literal() -> None:
    h = load(
        """
        on_http_request:
          - actions:
              - type: set-vars
                config: {vars: [{who: erin}]}
              - type: basic-auth
                config: {credentials: ["alice:pa$${not-cel}word", "${vars.who}:$${x}-literal"]}
        """
    )
    assert request(h, headers=[basic("alice:pa${not-cel}word")]).forwarded is not None
    assert request(h, headers=[basic("erin:${x}-literal")]).forwarded is not None
    assert request(h, headers=[basic("alice:pa$${not-cel}word")]).status == 401
