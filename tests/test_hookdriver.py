"""`edgeward.hookdriver.HookFlow`, sans-IO: what the proxy and `policy test`
both decide between the hooks and the wire."""

from __future__ import annotations

from collections.abc import Generator

from edgeward.hookdriver import HookFlow, drive_sync, filter_whole
from edgeward.hooks import (
    Effect,
    EffectResult,
    ExchangeSummary,
    Forward,
    ForwardInternal,
    Hooked,
    LocalResponse,
    PassResponse,
    ReadBody,
    RequestHead,
    RequestOutcome,
    ResponseHead,
    ResponseOutcome,
)

HEAD = RequestHead(b"POST", b"/", b"app.example.com", b"https", [], b"1.1")


class Replace:
    """A body filter replacing one byte string by another (whole chunks)."""

    def __init__(self, old: bytes, new: bytes) -> None:
        self.old, self.new = old, new

    def feed(self, data: bytes) -> bytes:
        return data.replace(self.old, self.new)

    def finish(self) -> bytes:
        return b""


class Hooks:
    """Records what it saw; forwards (with a filter) or reads the body first."""

    def __init__(self, name: str, seen: list[str], body_filter: Replace | None = None) -> None:
        self.name, self.seen, self.body_filter = name, seen, body_filter
        self.read_body = False

    def on_http_request(self, head: RequestHead) -> Hooked[RequestOutcome]:
        self.seen.append(f"{self.name} request")
        if self.read_body:
            return self._with_body(head)
        return Forward(head, None, self.body_filter)

    def _with_body(self, head: RequestHead) -> Generator[Effect, EffectResult, RequestOutcome]:
        body = yield ReadBody(100)
        assert isinstance(body, bytes)
        return Forward(head, body, self.body_filter)

    def on_http_response(self, head: ResponseHead) -> Hooked[ResponseOutcome]:
        self.seen.append(f"{self.name} response {dict(head.headers).get(b'edgeward-error')}")
        return PassResponse(head)

    def on_complete(self, summary: ExchangeSummary) -> None:
        self.seen.append(f"{self.name} complete {summary.status}")


def test_an_internal_endpoints_hooks_run_inside_and_its_filter_after_ours() -> None:
    seen: list[str] = []
    flow = HookFlow(Hooks("outer", seen, Replace(b"a", b"b")))
    outcome = flow.request(HEAD)
    assert isinstance(outcome, Forward)
    entered = ForwardInternal("https://api.internal", outcome.head, None, outcome.body_filter)
    inner = Hooks("inner", seen, Replace(b"b", b"c"))
    inner.read_body = True  # its phase yields: the generator is run by the driver
    final = drive_sync(flow.enter(entered, inner), lambda effect: b"aab")
    assert isinstance(final, Forward) and final.body == b"aab"
    body, streamed = flow.request_body(final, None)
    assert (body, streamed) == (b"ccc", None)  # a read body is filtered here, whole

    drive_sync(flow.response(ResponseHead(200, [])), lambda effect: None)
    flow.complete(ExchangeSummary(200, 3, 0, 0.0, None, None))
    assert seen == [
        "outer request",
        "inner request",
        "inner response None",
        "outer response None",
        "inner complete 200",
        "outer complete 200",
    ]


def test_an_internal_endpoint_without_a_policy_gets_the_request_as_it_is() -> None:
    flow = HookFlow(None)
    entered = ForwardInternal("https://api.internal", HEAD, b"x", None)
    assert flow.enter(entered, None) == Forward(HEAD, b"x", None)
    assert flow.hooks is None  # nothing to run on the response


def test_a_body_not_read_streams_through_the_filter() -> None:
    to_b = Replace(b"a", b"b")
    body, streamed = HookFlow.request_body(Forward(HEAD, None, to_b), None)
    assert body is None and streamed is to_b
    assert HookFlow.request_body(Forward(HEAD, None, None), b"read") == (b"read", None)
    assert filter_whole(to_b, b"banana") == b"bbnbnb"


def test_the_edges_own_answer_carries_its_code_into_the_response_phase() -> None:
    seen: list[str] = []
    flow = HookFlow(Hooks("policy", seen))
    answer = LocalResponse(401, [(b"www-authenticate", b"Basic")], b"", "ERR_EDGEWARD_3401")
    head = flow.answer_head(answer)
    assert head.headers == [
        (b"www-authenticate", b"Basic"),
        (b"edgeward-error", b"ERR_EDGEWARD_3401"),
    ]
    drive_sync(flow.response(head), lambda effect: None)
    assert seen == ["policy response b'ERR_EDGEWARD_3401'"]
    assert answer.headers == [(b"www-authenticate", b"Basic")]  # the answer itself is unchanged


def test_a_filtered_body_loses_its_length() -> None:
    head = ResponseHead(200, [(b"content-type", b"text/plain"), (b"content-length", b"6")])
    assert HookFlow.passed_head(PassResponse(head)) is head
    filtered = HookFlow.passed_head(PassResponse(head, Replace(b"a", b"b")))
    assert filtered.headers == [(b"content-type", b"text/plain")]
    assert head.headers[1] == (b"content-length", b"6")
