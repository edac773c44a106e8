"""request-body-find-replace, response-body-find-replace, sse-find-replace
and the on_event_stream_message phase, on the sans-IO engine."""

from __future__ import annotations

import gzip
from collections.abc import Sequence

import pytest
from tests.policy.helpers import ENDPOINT, Harness, conn, drive, load, load_error

from edgeward.hooks import (
    BodyFilter,
    Forward,
    LocalResponse,
    PassResponse,
    RequestHead,
    ResponseHead,
)
from edgeward.policy.actions import ACTIONS, UNSUPPORTED


def run(
    h: Harness,
    *,
    method: str = "POST",
    request_headers: Sequence[tuple[str, str]] = (),
    status: int = 200,
    headers: Sequence[tuple[str, str]] = (("content-type", "text/plain"),),
) -> tuple[Forward, ResponseHead, BodyFilter | None]:
    head = RequestHead(
        method.encode(),
        b"/",
        b"app.example.com",
        b"https",
        [(n.encode(), v.encode()) for n, v in request_headers],
        b"1.1",
    )
    exchange = h.policy.begin(conn(), ENDPOINT, head, "req-1")
    forward = drive(exchange.on_http_request(head), None)
    assert isinstance(forward, Forward)
    response = ResponseHead(status, [(n.encode(), v.encode()) for n, v in headers])
    final = drive(exchange.on_http_response(response), None)
    assert isinstance(final, PassResponse)
    return forward, final.head, final.body_filter


def through(body_filter: BodyFilter | None, body: bytes, size: int = 3) -> bytes:
    assert body_filter is not None
    out = b"".join(body_filter.feed(body[i : i + size]) for i in range(0, len(body), size))
    return out + body_filter.finish()


def header(head: ResponseHead, name: str) -> list[str]:
    return [v.decode() for n, v in head.headers if n == name.encode()]


def test_the_three_actions_are_implemented() -> None:
    for name in ("request-body-find-replace", "response-body-find-replace", "sse-find-replace"):
        assert name in ACTIONS and name not in UNSUPPORTED


REQUEST = r"""
on_http_request:
  - actions:
      - type: request-body-find-replace
        config:
          replacements:
            - from: '"api_key":\s*"[^"]*"'
              to: '"api_key": "[REDACTED]"'
            - from: '[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}'
              to: '[EMAIL REDACTED]'
"""


def test_request_body_goes_through_a_filter() -> None:
    forward, _, _ = run(load(REQUEST))
    body = b'{"api_key": "sk-abc123secret", "user_email": "john.doe@example.com", "m": "hi"}'
    assert through(forward.body_filter, body) == (
        b'{"api_key": "[REDACTED]", "user_email": "[EMAIL REDACTED]", "m": "hi"}'
    )


RESPONSE = r"""
on_http_response:
  - actions:
      - type: response-body-find-replace
        config:
          replacements:
            - {from: '\b\d{3}-\d{2}-\d{4}\b', to: '[SSN REDACTED]'}
            - {from: 'REDACTED', to: 'hidden by ${req.headers["x-who"][0]}'}
  - actions:
      - type: add-headers
        config:
          headers:
            x-found: "${string(size(actions.ngrok.response_body_find_replace.replacements))}"
"""


def test_response_body_replaced_in_order_with_interpolation() -> None:
    _, head, body_filter = run(
        load(RESPONSE),
        request_headers=[("x-who", "edge")],
        headers=[("content-type", "text/plain"), ("content-length", "40"), ("etag", '"v1"')],
    )
    assert header(head, "content-length") == []  # the proxy frames the new body
    assert header(head, "etag") == ['W/"v1"']
    assert header(head, "x-found") == ["0"]  # the body has not streamed yet
    assert through(body_filter, b"SSN: 123-45-6789.") == b"SSN: [SSN hidden by edge]."


@pytest.mark.parametrize(
    ("method", "status", "headers"),
    [
        ("HEAD", 200, [("content-type", "text/plain")]),
        ("GET", 204, []),
        ("GET", 304, []),
        ("GET", 206, [("content-range", "bytes 0-9/99")]),
    ],
)
def test_responses_without_a_whole_body_are_left_alone(
    method: str, status: int, headers: list[tuple[str, str]]
) -> None:
    _, _, body_filter = run(load(RESPONSE), method=method, status=status, headers=headers)
    assert body_filter is None


def test_an_encoded_response_is_skipped_with_an_event() -> None:
    h = load(RESPONSE)
    _, head, body_filter = run(
        h, headers=[("content-type", "text/plain"), ("content-encoding", "gzip")]
    )
    assert body_filter is None
    assert header(head, "content-encoding") == ["gzip"]
    [event] = h.events
    assert (event.action, event.verdict, event.error_code) == (
        "response-body-find-replace",
        "skip",
        "ERR_EDGEWARD_3904",
    )


@pytest.mark.parametrize("compress_first", [True, False])
def test_replacement_runs_before_compress_response_in_either_order(compress_first: bool) -> None:
    replace = "{type: response-body-find-replace, config: {replacements: [{from: 'b+', to: X}]}}"
    actions = ["{type: compress-response}", replace]
    if not compress_first:
        actions.reverse()
    h = load(f"on_http_response: [{{actions: [{', '.join(actions)}]}}]")
    _, head, body_filter = run(
        h, request_headers=[("accept-encoding", "gzip")], headers=[("content-type", "text/html")]
    )
    assert header(head, "content-encoding") == ["gzip"]
    body = b"abbbc " * 200
    assert gzip.decompress(through(body_filter, body, 7)) == b"aXc " * 200


def test_load_errors_are_located() -> None:
    error = load_error(
        """
        on_http_response:
          - actions:
              - type: response-body-find-replace
                config:
                  replacements:
                    - from: 'a('
        on_http_request:
          - actions:
              - type: sse-find-replace
                config: {replacements: [{from: a}]}
        on_event_stream_message:
          - actions:
              - type: deny
              - type: sse-find-replace
                config: {replacements: [{field: event, from: a}]}
              - type: sse-find-replace
                config: {replacements: []}
        """
    )
    messages = [str(d) for d in error.errors]
    assert any("invalid regular expression" in m and ":7:" in m for m in messages), messages
    assert any("'sse-find-replace' cannot run in on_http_request" in m for m in messages)
    assert any("'deny' cannot run in on_event_stream_message" in m for m in messages)
    assert any("field must be 'data' or 'retry', not 'event'" in m for m in messages)
    assert any("replacements needs at least 1 item" in m for m in messages)


def test_an_interpolated_regex_that_is_not_one_fails_closed() -> None:
    h = load(
        "on_http_response: [{actions: [{type: response-body-find-replace,"
        " config: {replacements: [{from: '${req.headers[\"x-re\"][0]}'}]}}]}]"
    )
    head = RequestHead(b"GET", b"/", b"a", b"https", [(b"x-re", b"a(")], b"1.1")
    exchange = h.policy.begin(conn(), ENDPOINT, head, "req-1")
    drive(exchange.on_http_request(head), None)
    final = drive(exchange.on_http_response(ResponseHead(200, [])), None)
    assert isinstance(final, LocalResponse)
    assert (final.status, final.error_code) == (500, "ERR_EDGEWARD_3901")


# --- on_event_stream_message ---------------------------------------------------------

SSE = r"""
on_event_stream_message:
  - expressions: ["sse.event != 'raw'"]
    actions:
      - type: sse-find-replace
        config:
          replacements:
            - field: data
              from: '\b(IMPORTANT|WARNING|NOTE)\b'
              to: '**$1**'
            - from: '\d{3}-\d{2}-\d{4}'
              to: '[SSN of ${sse.id}]'
            - field: retry
              from: '\d+'
              to: '5000'
"""
STREAM = (
    b"retry: 10\n\n"
    b": keep-alive\n\n"
    b"id: 1\ndata: NOTE one\ndata: 123-45-6789\n\n"
    b"event: raw\ndata: NOTE kept\n\n"
    b"id: 2\r\ndata: plain\r\n\r\n"
    b"data: IMPORTANT but unterminated"
)
EXPECTED = (
    b"retry: 5000\n\n"
    b": keep-alive\n\n"
    b"id: 1\ndata: **NOTE** one\ndata: [SSN of 1]\n\n"
    b"event: raw\ndata: NOTE kept\n\n"
    b"id: 2\r\ndata: plain\r\n\r\n"
    b"data: IMPORTANT but unterminated"
)


@pytest.mark.parametrize("size", [1, 4, 1000])
def test_each_message_goes_through_the_phase(size: int) -> None:
    _, _, body_filter = run(
        load(SSE), headers=[("content-type", "text/event-stream; charset=utf-8")]
    )
    assert through(body_filter, STREAM, size) == EXPECTED


def test_not_an_event_stream_no_phase() -> None:
    _, _, body_filter = run(load(SSE), headers=[("content-type", "text/plain")])
    assert body_filter is None


def test_sse_results_and_response_phase_together() -> None:
    h = load(
        SSE
        + """
on_http_response:
  - actions:
      - type: response-body-find-replace
        config: {replacements: [{from: 'kept', to: 'KEPT'}]}
"""
    )
    _, _, body_filter = run(h, headers=[("content-type", "text/event-stream")])
    # the SSE phase sees the stream first, then the response phase's filter
    assert through(body_filter, STREAM, 5) == EXPECTED.replace(b"kept", b"KEPT")


def test_a_failing_rule_drops_its_message_unless_on_error_continue() -> None:
    policy = """
on_event_stream_message:
  - {on_error: ONERR, actions: [{type: sse-find-replace,
     config: {replacements: [{from: '${sse.data == "bad" ? "(" : "x"}', to: y}]}}]}
"""
    stream = b"data: x1\n\ndata: bad\n\ndata: x2\n\n"
    h = load(policy.replace("ONERR", "halt"))
    _, _, body_filter = run(h, headers=[("content-type", "text/event-stream")])
    assert through(body_filter, stream) == b"data: y1\n\ndata: y2\n\n"
    assert [(e.phase, e.verdict) for e in h.events] == [("on_event_stream_message", "error")]
    h = load(policy.replace("ONERR", "continue"))
    _, _, body_filter = run(h, headers=[("content-type", "text/event-stream")])
    assert through(body_filter, stream) == b"data: y1\n\ndata: bad\n\ndata: y2\n\n"


def test_sse_phase_variables() -> None:
    h = load(
        """
on_event_stream_message:
  - expressions:
      - "sse.event == 'tick' && sse.id == '9' && sse.retry == '' && res.status_code == 200"
      - "req.method == 'POST' && sse.data.size() == 3 && sse.data.endsWith('b')"
    actions:
      - type: sse-find-replace
        config: {replacements: [{from: 'a', to: 'matched'}]}
"""
    )
    _, _, body_filter = run(h, headers=[("content-type", "text/event-stream")])
    stream = b"event: tick\nid: 9\ndata: a\ndata: b\n\nevent: tock\nid: 9\ndata: a\ndata: b\n\n"
    assert through(body_filter, stream) == (
        b"event: tick\nid: 9\ndata: matched\ndata: b\n\nevent: tock\nid: 9\ndata: a\ndata: b\n\n"
    )


def test_sse_variables_only_in_their_phase() -> None:
    error = load_error(
        "on_http_response: [{expressions: [\"sse.data == ''\"], actions: [{type: deny}]}]"
    )
    assert "sse" in str(error)


def test_encoded_event_stream_is_skipped_with_an_event() -> None:
    h = load(SSE)
    _, _, body_filter = run(
        h, headers=[("content-type", "text/event-stream"), ("content-encoding", "br")]
    )
    assert body_filter is None
    assert [(e.phase, e.verdict) for e in h.events] == [("on_http_response", "skip")]


def test_sse_then_compression() -> None:
    h = load(SSE + "on_http_response: [{actions: [{type: compress-response}]}]\n")
    _, head, body_filter = run(
        h,
        request_headers=[("accept-encoding", "gzip")],
        headers=[("content-type", "text/event-stream")],
    )
    assert header(head, "content-encoding") == ["gzip"]
    assert gzip.decompress(through(body_filter, STREAM, 9)) == EXPECTED


def test_listener_and_endpoint_request_filters_chain_outer_first() -> None:
    from edgeward.hookdriver import ChainedHooks

    def policy(source: str, to: str) -> Harness:
        return load(
            "on_http_request: [{actions: [{type: request-body-find-replace,"
            f" config: {{replacements: [{{from: '{source}', to: '{to}'}}]}}}}]}}]"
        )

    outer, inner = policy("a", "b"), policy("b", "c")  # a -> b (listener), then b -> c
    head = RequestHead(b"POST", b"/", b"app.example.com", b"https", [], b"1.1")
    chained = ChainedHooks(
        outer.policy.begin(conn(), ENDPOINT, head, "r"),
        inner.policy.begin(conn(), ENDPOINT, head, "r"),
    )
    forward = drive(chained.on_http_request(head), None)
    assert isinstance(forward, Forward)
    assert through(forward.body_filter, b"abcab", 2) == b"ccccc"
