"""`forward-internal` in the engine, sans-IO: the URL rendered per request,
the driver asked whether the target can take it (`FindInternal`), the
`ForwardInternal` outcome carrying the request as the actions before it
changed it, `on_error: halt|continue` with the documented result variables,
and the load-time checks. Through the proxy: tests/agents/test_internal.py."""

from __future__ import annotations

from tests.policy.helpers import ENDPOINT, conn, load, load_error

from edgeward.hookdriver import drive_sync as drive
from edgeward.hooks import (
    Effect,
    EffectResult,
    FindInternal,
    ForwardInternal,
    InternalError,
    LocalResponse,
    RequestHead,
)

FORWARD = """
on_http_request:
  - actions:
      - type: add-headers
        config: {headers: {x-checked: "yes"}}
      - type: forward-internal
        config:
          url: "https://${req.host.split('.dev.example.com')[0]}.internal"
          %s
  - actions:
      - type: custom-response
        config:
          status_code: 503
          body: "${actions.ngrok.forward_internal.url} ${actions.ngrok.forward_internal.error.code}"
"""
OFFLINE = InternalError(404, "ERR_EDGEWARD_3200", "no internal endpoint alice.internal is online")


def run(text: str, answer: InternalError | None, host: str = "alice.dev.example.com") -> object:
    h = load(text)
    head = RequestHead(b"GET", b"/x?y=1", host.encode(), b"https", [], b"1.1")
    exchange = h.policy.begin(conn(), ENDPOINT, head, "req-1")
    asked: list[str] = []

    def perform(effect: Effect) -> EffectResult:
        assert isinstance(effect, FindInternal)
        asked.append(effect.url)
        return answer

    outcome = drive(exchange.on_http_request(head), perform)
    assert asked == ["https://alice.internal"] or not asked
    return outcome


def test_the_request_goes_on_to_the_internal_endpoint() -> None:
    outcome = run(FORWARD % "", None)
    assert isinstance(outcome, ForwardInternal)
    assert outcome.url == "https://alice.internal"
    assert outcome.head.authority == b"alice.dev.example.com"  # Host stays public
    assert outcome.head.target == b"/x?y=1"
    assert (b"x-checked", b"yes") in outcome.head.headers  # what the actions before it did


def test_halt_answers_with_the_drivers_error() -> None:
    outcome = run(FORWARD % "", OFFLINE)
    assert isinstance(outcome, LocalResponse)
    assert (outcome.status, outcome.error_code) == (404, "ERR_EDGEWARD_3200")
    assert b"alice.internal" in outcome.body


def test_continue_records_the_error_and_goes_on() -> None:
    outcome = run(FORWARD % "on_error: continue", OFFLINE)
    assert isinstance(outcome, LocalResponse)
    assert outcome.status == 503
    assert outcome.body == b"https://alice.internal ERR_EDGEWARD_3200"


def test_actions_after_it_are_reachable_only_with_continue() -> None:
    after = """
on_http_request:
  - actions:
      - type: forward-internal
        config: {url: "https://a.internal", %s}
      - type: custom-response
        config: {status_code: 502}
"""
    assert "unreachable" in str(load_error(after % "on_error: halt"))
    load(after % "on_error: continue")


def test_load_time_checks() -> None:
    for config, message in (
        ("url: 'https://api.example.com'", "ending in '.internal'"),
        ("url: 'https://a_b.internal'", "ending in '.internal'"),
        ("url: 'tcp://ssh.internal:22'", "tcp and tls are not supported"),
        ("url: 'https://a.internal/path'", "scheme://host[:port]"),
        ("url: 'https://a.internal', on_error: maybe", "'halt' or 'continue'"),
        ("url: 'https://a.internal', binding: public", "'internal'"),
        ("url: 'https://a.internal', endpoint_selectors: []", "not supported"),
        ("on_error: halt", "url"),
    ):
        text = f"on_http_request: [{{actions: [{{type: forward-internal, config: {{{config}}}}}]}}]"
        assert message in str(load_error(text)), config
    tcp = "on_tcp_connect: [{actions: [{type: forward-internal, config: {url: 'https://a.internal'}}]}]"
    assert "only in on_http_request" in str(load_error(tcp))


def test_a_rendered_url_that_names_no_internal_endpoint_fails_closed() -> None:
    outcome = run(FORWARD % "", None, host="evil@attacker.example")
    assert isinstance(outcome, LocalResponse)
    assert outcome.status == 500
    assert outcome.error_code == "ERR_EDGEWARD_2253"
