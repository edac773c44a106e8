from __future__ import annotations

import pytest

from edgeward.policy import PolicyError, Severity, compile_policy

from .helpers import load, load_error, one, parse


def test_json_and_yaml_are_equivalent() -> None:
    yaml_policy = load(
        """
        on_http_request:
          - name: block admin
            expressions: ["req.url.path.startsWith('/admin')"]
            actions: [{type: deny, config: {status_code: 404}}]
        """
    )
    json_policy = compile_policy(
        parse(
            '{"on_http_request":[{"name":"block admin",'
            '"expressions":["req.url.path.startsWith(\'/admin\')"],'
            '"actions":[{"type":"deny","config":{"status_code":404}}]}]}',
            "policy.json",
        ),
        ip_policies={},
    )
    for policy in (yaml_policy.policy, json_policy):
        rules = [r for phase in policy.rules.values() for r in phase]
        assert [(r.label, len(r.steps)) for r in rules] == [("block admin", 1)]


def test_errors_name_file_line_rule_and_action() -> None:
    err = load_error(
        """
        on_http_request:
          - name: first
            actions: [{type: deny}]
          - name: broken
            expressions:
              - "req.url.path.startsWith('/a')"
              - "req.url.path.startsWith("
            actions:
              - type: add-headers
                config:
                  headers: {x-a: "${req.nope}"}
        """
    )
    assert len(err.errors) == 2
    expr, interp = err.errors
    assert expr.location.file == "policy.yml" and expr.location.line == 8
    assert expr.rule == "on_http_request[1] 'broken'"
    assert "line 1, column" in expr.message
    assert interp.location.line == 12 and interp.action == "actions[0] add-headers"
    assert "policy.yml:8" in str(err)


def test_unknown_action_types_and_unsupported_ones() -> None:
    assert "unknown action type 'dney'" in str(load_error(one("dney")))
    assert "not supported by edgeward" in str(load_error(one("ai-gateway")))


def test_document_shape_errors() -> None:
    assert "unknown phase 'on_request'" in str(load_error("on_request: []"))
    assert "at least one action" in str(load_error("on_http_request: [{name: x}]"))
    assert "at least one action" in str(load_error("on_http_request: [{name: x, actions: []}]"))
    assert "unknown rule field 'type'" in str(load_error("on_http_request: [{type: deny}]"))
    assert "must be a mapping of phases" in str(load_error("- a"))
    assert "an expression must be a string" in str(
        load_error("on_http_request: [{expressions: [1], actions: [{type: deny}]}]")
    )
    assert "on_error" in str(load_error(one("deny", rule="on_error: maybe")))
    assert "unknown action field 'configs'" in str(
        load_error("on_http_request: [{actions: [{type: deny, configs: {}}]}]")
    )


def test_errors_are_all_reported() -> None:
    err = load_error(
        """
        on_http_request:
          - actions: [{type: nope}]
          - actions: [{type: deny, config: {status_code: 1}}]
        on_http_response:
          - actions: [{type: deny}]
        """
    )
    assert len(err.errors) == 3
    assert isinstance(err, PolicyError)


def test_single_objects_are_normalised_with_a_warning() -> None:
    h = load(
        """
        on_http_request:
          name: single
          expressions: "req.method == 'GET'"
          actions:
            type: deny
        """
    )
    assert [w.severity for w in h.policy.warnings] == [Severity.WARNING] * 3
    rules = [r for phase in h.policy.rules.values() for r in phase]
    assert [r.label for r in rules] == ["single"]


def test_legacy_phase_names() -> None:
    h = load("inbound: [{actions: [{type: deny}]}]")
    assert "legacy" in h.policy.warnings[0].message


def test_empty_policy_is_valid() -> None:
    h = load("")
    assert all(not rules for rules in h.policy.rules.values())


@pytest.mark.parametrize("phase", ["on_tcp_connect", "on_http_request"])
def test_response_variables_are_not_available_before_the_response(phase: str) -> None:
    err = load_error(
        one("close-connection", phase=phase, rule="expressions: ['res.status_code > 0']")
    )
    assert "res" in str(err)


def test_duplicate_spellings_are_an_error() -> None:
    err = load_error(
        one("verify-webhook", "provider: github, secret: x, tolerance: 1m, skew_tolerance: 2m")
    )
    assert "same field" in str(err)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("on_http_requests: []", 1, "unknown phase 'on_http_requests'; did you mean"),
        (
            "on_http_request: [{expresions: ['true'], actions: [{type: deny}]}]",
            1,
            "unknown rule field 'expresions'; did you mean 'expressions'?",
        ),
        (one("rate_limit"), 1, "unknown action type 'rate_limit'; did you mean 'rate-limit'?"),
        (one("restrict-ip"), 1, "did you mean 'restrict-ips'?"),
        (
            "on_http_request: [{actions: [{type: deny, confg: {}}]}]",
            1,
            "unknown action field 'confg'; did you mean 'config'?",
        ),
        # A mistyped required field: reported as unknown at its own line,
        # not as missing at the action's config.
        (
            "on_http_request:\n  - actions:\n      - type: redirect\n        config:\n"
            "          too: /x\n",
            5,
            "unknown field 'too'; did you mean 'to'?",
        ),
        (
            "on_http_request:\n  - actions:\n      - type: restrict-ips\n        config:\n"
            "          alow: [10.0.0.0/8]\n",
            5,
            "unknown field 'alow'; did you mean 'allow'?",
        ),
        (
            "on_http_request:\n  - actions:\n      - type: log\n        config:\n"
            "          metdata: {a: b}\n",
            5,
            "unknown field 'metdata'; did you mean 'metadata'?",
        ),
        # A mistyped optional field: unknown, with the nearest field.
        (
            one("deny", "status_cod: 404"),
            1,
            "unknown field 'status_cod'; did you mean 'status_code'? (fields: status_code)",
        ),
        (one("verify-webhook", "provider: githb, secret: s"), 1, "did you mean 'github'?"),
        (
            one("compress-response", "algorithms: [gzipp]", phase="on_http_response"),
            1,
            "did you mean 'gzip'?",
        ),
    ],
)
def test_mistakes_are_named_with_a_suggestion(text: str, line: int, message: str) -> None:
    (error,) = load_error(text).errors
    assert message in error.message
    assert error.location.line == line


JWT_WITH_SKEW = """
on_http_request:
  - actions:
      - type: jwt-validation
        config:
          issuer: {allow_list: [{value: https://idp.example}]}
          audience: {allow_list: [{value: api}]}
          http: {tokens: [{type: jwt, method: header, name: Authorization, prefix: "Bearer "}]}
          jws:
            allowed_algorithms: [RS256]
            keys: {sources: {additional_jkus: [https://idp.example/jwks.json]}}
          clock_skew: 1h
"""
RATE_LIMIT = "name: x, algorithm: sliding_window, capacity: 3, bucket_key: [conn.client_ip]"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (one("rate-limit", f"{RATE_LIMIT}, rate: 5s"), "rate must be at least 60s, not 5s"),
        (
            one("rate-limit", f"{RATE_LIMIT}, rate: 25h"),
            "rate must be at most 86400s, not 90000s",
        ),
        (JWT_WITH_SKEW, "clock_skew must be at most 600s, not 3600s"),
        (
            one("verify-webhook", "provider: github, secret: s, tolerance: 0.5s"),
            "tolerance must be at least 1s, not 0.5s",
        ),
        (one("deny", "status_code: 99"), "status_code must be at least 100, not 99"),
    ],
)
def test_limits_are_reported_with_their_units(text: str, message: str) -> None:
    (error,) = load_error(text).errors
    assert error.message == message
