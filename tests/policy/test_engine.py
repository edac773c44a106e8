from __future__ import annotations

import io
import json

from edgeward.policy import compile_policy
from edgeward.policy.events import JsonLinesSink, ListSink

from .helpers import Harness, load, needs_secrets_get, one, parse, request


def test_rules_and_actions_run_in_order() -> None:
    h = load(
        """
        on_http_request:
          - actions: [{type: add-headers, config: {headers: {x-order: "1"}}}]
          - expressions: ["false"]
            actions: [{type: add-headers, config: {headers: {x-order: "skipped"}}}]
          - actions:
              - type: add-headers
                config: {headers: {x-order: "2"}}
              - type: add-headers
                config: {headers: {x-order: "3"}}
        """
    )
    assert request(h).upstream_header("x-order") == ["1", "2", "3"]


def test_all_expressions_must_hold() -> None:
    h = load(
        """
        on_http_request:
          - expressions:
              - "req.method == 'POST'"
              - "req.url.path == '/x'"
            actions: [{type: deny}]
        """
    )
    assert request(h, "/x", method="POST").status == 403
    assert request(h, "/x").forwarded is not None
    assert request(h, "/y", method="POST").forwarded is not None


def test_runtime_error_fails_closed_with_500() -> None:
    h = load(
        """
        on_http_request:
          - name: needs header
            expressions: ["req.headers['x-token'][0] != 'ok'"]
            actions: [{type: deny}]
        """
    )
    r = request(h)  # no x-token header: no_such_key
    assert r.status == 500 and r.forwarded is None
    # the edge's one error format: text by default, JSON when preferred
    assert r.header("content-type") == ["text/plain; charset=utf-8"]
    assert b"error: ERR_EDGEWARD_2254\n" in r.body
    as_json = request(h, headers=[("accept", "application/json")])
    assert as_json.header("content-type") == ["application/json"]
    (event, _) = h.events
    assert (event.rule, event.action, event.verdict, event.error_code) == (
        "needs header",
        None,
        "error",
        "ERR_EDGEWARD_2254",
    )
    assert "no_such_key" in event.reason
    assert request(h, headers=[("x-token", "ok")]).forwarded is not None


def test_on_error_continue_skips_the_rule() -> None:
    h = load(
        """
        on_http_request:
          - on_error: continue
            expressions: ["req.headers['x-token'][0] != 'ok'"]
            actions: [{type: deny}]
          - actions: [{type: add-headers, config: {headers: {x-next: "1"}}}]
        """
    )
    r = request(h)
    assert r.upstream_header("x-next") == ["1"]
    assert [e.verdict for e in h.events] == ["continue"]


def test_a_dyn_expression_that_is_not_a_bool_fails_closed_at_run_time() -> None:
    # `vars.*` is dyn: only the run time can tell (a static non-bool is a
    # load error, test_loader.py).
    h = load(
        """
        on_http_request:
          - actions: [{type: set-vars, config: {vars: [{flag: "text"}]}}]
          - expressions: ["vars.flag"]
            actions: [{type: deny}]
        """
    )
    r = request(h)
    assert r.status == 500
    assert [(e.verdict, e.error_code) for e in h.events] == [("error", "ERR_EDGEWARD_2254")]
    assert "gave str, not a bool" in h.events[0].reason


def test_events_as_json_lines() -> None:
    stream = io.StringIO()
    h = load(one("deny", rule="name: no"))
    sink = h.policy.events = JsonLinesSink(stream)
    request(h, client_ip="198.51.100.4")
    sink.flush()
    event = json.loads(stream.getvalue())
    assert (
        event["rule"] == "no"
        and event["verdict"] == "deny"
        and event["client_ip"] == "198.51.100.4"
    )
    assert event["endpoint"] == "app" and event["request_id"] == "req-1" and event["status"] == 403
    assert event["time"].startswith("2023-11-14T")


def test_no_rules_forwards_untouched() -> None:
    h = load(one("add-headers", "headers: {x: y}", phase="on_http_response"))
    r = request(h, headers=[("a", "b")])
    assert r.forwarded is not None and r.forwarded.body is None
    assert r.upstream_header("a") == ["b"]


def test_time_and_endpoint_variables() -> None:
    h = load(
        """
        on_http_request:
          - expressions:
              - "timestamp(time.now) > timestamp('2023-01-01T00:00:00Z')"
              - "endpoint.name == 'app'"
            actions: [{type: custom-response, config: {body: "${time.now} ${endpoint.url}"}}]
        """
    )
    assert request(h).body == b"2023-11-14T22:13:20Z https://app.example.com"


CHAINED = """
on_http_request:
  - name: a
    expressions: ["req.url.path == '/a'"]
    actions: [{type: add-headers, config: {headers: {x-hit: a}}}]
  - name: b
    {on_error}
    expressions: ["req.headers['x-b'][0] == 'yes'"]
    actions: [{type: add-headers, config: {headers: {x-hit: b}}}]
  - name: c
    expressions: ["req.method == 'GET'"]
    actions: [{type: add-headers, config: {headers: {x-hit: c}}}]
"""


def test_chained_rules_match_like_rules_one_by_one() -> None:
    h = load(CHAINED.replace("{on_error}", ""))
    rules = h.policy.rules[next(p for p in h.policy.rules if h.policy.rules[p])]
    assert rules[0].chain is not None and rules[0].chain_end == 3  # tested as one program
    r = request(h, "/a", headers=[("x-b", "yes")])
    assert r.upstream_header("x-hit") == ["a", "b", "c"]
    r = request(h, "/z", method="POST", headers=[("x-b", "no")])
    assert r.upstream_header("x-hit") == []
    # Rule b fails (no x-b header): the error names rule b, after a ran.
    r = request(h, "/a")
    assert r.status == 500
    assert [(e.rule, e.verdict) for e in h.events] == [("b", "error")]


def test_chained_rule_with_on_error_continue() -> None:
    h = load(CHAINED.replace("{on_error}", "on_error: continue"))
    r = request(h, "/a")
    assert r.upstream_header("x-hit") == ["a", "c"]
    assert [(e.rule, e.verdict) for e in h.events] == [("b", "continue")]


@needs_secrets_get
def test_secrets_get_reads_the_compilers_secrets() -> None:
    text = """
    on_http_request:
      - expressions: ["req.headers['x-token'][0] != secrets.get('api', 'token')"]
        actions: [{type: deny, config: {status_code: 401}}]
    """
    sink = ListSink()
    policy = compile_policy(parse(text), secrets={"api": {"token": "t0ken"}}, events=sink)
    h = Harness(policy, sink)
    assert request(h, headers=[("x-token", "t0ken")]).forwarded is not None
    assert request(h, headers=[("x-token", "nope")]).status == 401
