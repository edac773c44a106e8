"""The console's sans-IO pieces without a server: the policy editor's
check and test on text (the CLI's code) and the API's diagnostics placed
the same way, and the event page's forms read as the API's bodies."""

from __future__ import annotations

from edgeward.admin.console import event_pages, policy_editor
from edgeward.admin.console.client import Answer

CASES = """cases:
  - name: denied
    request: {url: "https://a.example.com/admin"}
    expect: {status: 403}
"""
POLICY = """on_http_request:
  - expressions: ["req.url.path.startsWith('/admin')"]
    actions:
      - type: deny
        config: {status_code: 403}
"""


def test_a_yaml_syntax_error_is_placed_on_its_line() -> None:
    checked = policy_editor.check("on_http_request:\n  - actions: [\n")
    assert not checked.ok and checked.errors == 1
    (diagnostic,) = checked.diagnostics
    assert diagnostic.message.startswith("invalid YAML") and diagnostic.line == 3
    assert checked.lines[2].diagnostics == [diagnostic]


def test_every_policy_error_is_listed_with_its_line_and_column() -> None:
    text = POLICY.replace("type: deny", "type: dney").replace("status_code: 403", "status: 403")
    checked = policy_editor.check(text)
    assert not checked.ok
    assert [(d.line, d.column) for d in checked.diagnostics] == [(4, 9)]
    assert "did you mean 'deny'" in checked.diagnostics[0].message
    assert checked.lines[3].text == "      - type: dney"


def test_the_apis_diagnostics_are_placed_as_the_editors_own() -> None:
    """An endpoint's policy refused by the API shows as `check` shows it."""
    text = POLICY.replace("type: deny", "type: dney").replace("\n", "\r\n")
    api = [
        {"severity": "error", "message": "unknown action", "line": 4, "column": 9,
         "path": "on_http_request[0].actions[0].type"},
        {"severity": "warning", "message": "somewhere", "line": None, "column": None},
    ]  # fmt: skip
    checked = policy_editor.located(text, api)
    assert not checked.ok and checked.errors == 1
    placed, unplaced = checked.diagnostics
    assert placed.where == "traffic_policy:4:9: on_http_request[0].actions[0].type"
    assert checked.lines[3].text == "      - type: dney" and checked.lines[3].diagnostics == [
        placed
    ]
    assert unplaced.where == "traffic_policy" and not any(
        unplaced in line.diagnostics for line in checked.lines
    )
    assert policy_editor.located(POLICY, api[1:]).ok  # a warning refuses nothing


def test_a_good_policy_is_ok_with_what_it_holds() -> None:
    checked = policy_editor.check(POLICY)
    assert checked.ok and checked.summary == "1 on_http_request" and not checked.diagnostics


def test_cases_pass_or_fail_and_say_what_happened() -> None:
    failing = CASES + (
        '  - name: home\n    request: {url: "https://a.example.com/"}\n    expect: {status: 403}\n'
    )
    tested = policy_editor.run_tests(POLICY, failing)
    assert (tested.passed, tested.failed) == (1, 1)
    assert [c.passed for c in tested.cases] == [True, False]
    assert "FAIL status: expected 403, got 200" in tested.cases[1].text
    assert "answer: 403 from the edge" in tested.cases[0].text


def test_a_malformed_cases_document_is_a_located_error() -> None:
    tested = policy_editor.run_tests(POLICY, "cases: 3\n")
    assert tested.error.startswith("cases:1:1") and "'cases' list" in tested.error
    assert not tested.cases


def test_a_destination_form_becomes_the_target_of_its_kind_only() -> None:
    form = {
        "kind": "http", "url": " https://siem/x ", "token": "t", "ca": "", "path": "/ignored",
        "address": "ignored:1",
    }  # fmt: skip
    assert event_pages.target(form) == {"http": {"url": "https://siem/x", "token": "t"}}
    syslog = {"kind": "syslog", "address": "h:6514", "tls": "on", "tls_ca": "/ca.pem"}
    assert event_pages.target(syslog) == {"syslog": {"address": "h:6514", "tls": {"ca": "/ca.pem"}}}
    assert event_pages.target({"kind": "syslog", "address": "h:514", "tls_ca": "/ca.pem"}) == {
        "syslog": {"address": "h:514"}
    }
    assert event_pages.target({"kind": "carrier-pigeon"}) == {"carrier-pigeon": {}}


def test_event_types_are_split_on_commas_spaces_and_lines() -> None:
    assert event_pages.sources("credential_*, ip_policy_created.v0\n  endpoint_*") == [
        {"type": "credential_*"},
        {"type": "ip_policy_created.v0"},
        {"type": "endpoint_*"},
    ]
    assert event_pages.sources("  ") == []


def test_only_a_located_filter_error_is_placed_under_its_line() -> None:
    body = {
        "msg": "filter: 2:3: undeclared",
        "details": {"field": "filter", "line": 2, "column": 3},
    }
    placed = event_pages.located(Answer(400, body), "a &&\nb")
    assert placed is not None and (placed.line, placed.column) == (2, 3)
    assert placed.lines == ["a &&", "b"] and placed.message == "filter: 2:3: undeclared"
    other = {"msg": "sources: must be a list", "details": {"field": "sources"}}
    assert event_pages.located(Answer(400, other), "x") is None
    assert event_pages.located(Answer(500, None), "x") is None
