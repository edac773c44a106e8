"""`edgeward policy test` runs each case through the flow of hooks that
`edgeward serve` runs (`edgeward.hookdriver.HookFlow`): the same requests,
sent to a real edge before a real upstream and run as cases whose recorded
responses are that upstream's, get the same answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.policy.e2e import BACKENDS, Handler, Reply, Route, running_edge, serve

from edgeward.document import parse_document
from edgeward.policy import compile_policy
from edgeward.policy.cases import CaseClock, Outcome, read_cases, run_case
from edgeward.policy.events import ListSink

POLICY = """
on_http_request:
  - expressions: ["req.url.path.startsWith('/staff')"]
    actions:
      - type: basic-auth
        config: {credentials: ["alice:correct horse"]}
  - expressions: ["req.url.path == '/broken'"]
    actions:
      - type: circuit-breaker
        config: {error_threshold: 0.5, volume_threshold: 2, window_duration: 60s}
on_http_response:
  - actions:
      - type: add-headers
        config:
          headers:
            x-edge-error: >-
              ${hasResHeader('edgeward-error') ? getResHeader('edgeward-error')[0] : 'none'}
  - expressions: ["req.url.path == '/page'"]
    actions:
      - type: response-body-find-replace
        config: {replacements: [{from: upstream, to: edge}]}
"""

PAGE = b"hello from the upstream"

# The upstream's answers, served by the real upstream and recorded in the cases.
ROUTES: dict[str, Reply] = {
    "/page": (200, [("content-type", "text/plain")], PAGE),
    "/broken": (500, [("content-type", "text/plain")], b"broken\n"),
    "/staff": (200, [("content-type", "text/plain")], b"staff only\n"),
}

# In order: the breaker counts what the exchanges before it ended with.
REQUESTS = ["/staff", "/page", "/broken", "/broken", "/broken"]


def _cases(port: int) -> str:
    lines = ["cases:"]
    for path in REQUESTS:
        status, headers, body = ROUTES[path]
        fields = {name: value for name, value in headers}
        fields["content-length"] = str(len(body))
        header_map = ", ".join(f"{k}: {v!r}" for k, v in fields.items())
        lines += [
            f"  - name: {path}",
            f"    request: {{url: 'http://127.0.0.1:{port}{path}'}}",
            f"    response: {{status: {status}, headers: {{{header_map}}},"
            f" body: {body.decode()!r}}}",
        ]
    return "\n".join(lines) + "\n"


def _route(reply: Reply) -> Route:
    def route(handler: Handler) -> Reply:
        return reply

    return route


@pytest.fixture(params=BACKENDS)
def edge(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    if request.param == "rust":
        pytest.importorskip("edgeward_native")
    routes = {path: _route(reply) for path, reply in ROUTES.items()}
    with (
        serve(routes) as upstream,
        running_edge(tmp_path, POLICY, upstream.url, request.param) as running,
    ):
        yield running


def _answer_of_the_edge(response: httpx.Response) -> tuple[int, str, str | None, bool]:
    return (
        response.status_code,
        response.headers.get("x-edge-error", ""),
        response.headers.get("edgeward-error"),
        "content-length" in response.headers,
    )


def _answer_of_the_case(out: Outcome, local: bool) -> tuple[int, str, str | None, bool]:
    headers = {n.decode(): v.decode() for n, v in out.headers}
    assert out.status is not None
    # The edge frames an answer it made itself with a Content-Length.
    framed = local or "content-length" in headers
    return out.status, headers.get("x-edge-error", ""), headers.get("edgeward-error"), framed


def test_policy_test_answers_as_serve_does(edge: object) -> None:
    served = []
    with httpx.Client() as client:
        for path in REQUESTS:
            response = client.get(edge.url(path))  # type: ignore[attr-defined]
            served.append(_answer_of_the_edge(response))
            if path == "/page":
                assert response.content == b"hello from the edge"

    clock, sink = CaseClock(), ListSink()
    port = edge.port  # type: ignore[attr-defined]
    cases, ip_policies = read_cases(parse_document(_cases(port), "cases.yml"))
    policy = compile_policy(
        parse_document(POLICY, "policy.yml"), ip_policies=ip_policies, events=sink, clock=clock
    )
    tested = []
    for case in cases:
        out = run_case(policy, case, clock, sink.events)
        tested.append(_answer_of_the_case(out, local=out.forwarded is None))
        if case.url.endswith("/page"):
            assert out.body == b"hello from the edge"

    assert served == tested
    # What the flow decides, spelled out: the response phase of the edge's
    # own answers sees their code; a filtered body loses its length; the
    # breaker counts the exchanges that ended (on_complete), and trips.
    assert [(status, seen) for status, seen, _, _ in served] == [
        (401, "ERR_EDGEWARD_3401"),
        (200, "none"),
        (500, "none"),
        (500, "none"),
        (503, "ERR_EDGEWARD_3202"),
    ]
    assert served[1][3] is False
