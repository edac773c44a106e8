"""http-request: the action on the sans-IO engine (Fetch effects answered by
a script, a fake clock), the target rules, and end to end through `edgeward
serve` against HTTP servers the test starts on 127.0.0.1."""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from edgeward.hookdriver import drive_sync as drive
from edgeward.hooks import (
    Effect,
    EffectResult,
    Fetch,
    FetchResult,
    Forward,
    LocalResponse,
    RequestHead,
)
from edgeward.policy import PolicyError, compile_policy
from edgeward.policy.events import ListSink
from edgeward.policy.targets import ExternalTargets

from .e2e import BACKENDS, Handler, Reply, events, serve
from .helpers import ENDPOINT, NOW, conn, parse

ALLOW = SimpleNamespace(hosts=("api.example.com", "*.partner.example"), networks=("192.0.2.0/24",))


# --- the sans-IO harness ---------------------------------------------------------


@dataclass
class Run:
    outcome: Forward | LocalResponse | Any
    fetches: list[Fetch]
    results: dict[str, Any]
    events: list[Any]

    @property
    def status(self) -> int | None:
        return self.outcome.status if isinstance(self.outcome, LocalResponse) else None


@dataclass
class Policy:
    text: str
    rules: Any = field(default_factory=lambda: ALLOW)
    now: float = NOW
    sink: ListSink = field(default_factory=ListSink)

    def __post_init__(self) -> None:
        self.policy = compile_policy(
            parse(self.text),
            ip_policies={},
            events=self.sink,
            clock=lambda: self.now,
            http_request=self.rules,
        )

    def run(
        self,
        answers: dict[str, Sequence[FetchResult]] | None = None,
        *,
        url: str = "/",
        headers: Sequence[tuple[str, str]] = (),
        seconds_per_fetch: float = 0.05,
    ) -> Run:
        """One request; each Fetch is answered with the next result scripted
        for its URL and takes `seconds_per_fetch` of the fake clock."""
        script = {u: list(rs) for u, rs in (answers or {}).items()}
        fetches: list[Fetch] = []

        def perform(effect: Effect) -> EffectResult:
            assert isinstance(effect, Fetch), effect
            fetches.append(effect)
            self.now += seconds_per_fetch
            queue = script.get(effect.url)
            assert queue, f"no answer scripted for {effect.url}"
            return queue.pop(0) if len(queue) > 1 else queue[0]

        head = RequestHead(
            b"GET",
            url.encode(),
            b"app.example.com",
            b"https",
            [(n.encode(), v.encode()) for n, v in headers],
            b"1.1",
        )
        exchange = self.policy.begin(conn(), ENDPOINT, head, "req-1")
        exchange.trace = []  # record the results even when no rule reads them
        outcome = drive(exchange.on_http_request(head), perform)
        results = dict(exchange.results["ngrok"].get("http_request") or {})
        return Run(outcome, fetches, results, list(self.sink.events))


def policy(config: str, *, after: str = "", rules: Any = ALLOW) -> Policy:
    """One http-request action (config in YAML flow style inside `{}`),
    then `after` (more rules, YAML)."""
    text = f"""
on_http_request:
  - name: call
    actions:
      - type: http-request
        config: {{{config}}}
{after}"""
    return Policy(text, rules)


def ok(body: str = "", status: int = 200, headers: Sequence[tuple[str, str]] = ()) -> FetchResult:
    return FetchResult(status, tuple(headers), body.encode(), resolved_ip="192.0.2.7")


# --- requests and results ----------------------------------------------------------


def test_a_get_and_its_result_variables() -> None:
    p = policy(
        "url: 'https://api.example.com/user'",
        after="""
  - expressions: ["actions.ngrok.http_request.res.status_code == 200"]
    actions:
      - type: custom-response
        config: {body: "tier=${json.decode(actions.ngrok.http_request.res.body).tier}"}
""",
    )
    run = p.run(
        {"https://api.example.com/user": [ok('{"tier":"gold"}', headers=[("X-Tier", "g")])]}
    )
    assert run.status == 200 and run.outcome.body == b"tier=gold"
    (fetch,) = run.fetches
    assert (fetch.method, fetch.body, fetch.max_bytes) == ("GET", b"", 256 * 1024)
    assert dict(fetch.headers)["edgeward-hops"] == "1"
    assert dict(fetch.headers)["x-forwarded-for"] == "192.0.2.10"
    assert fetch.address_allowed is not None
    res = run.results["res"]
    assert res["status_code"] == 200 and res["body"] == '{"tier":"gold"}'
    assert res["header"] == {"x-tier": ["g"]} and res["resolved_ip"] == "192.0.2.7"
    assert res["time_ms"] == 50
    assert run.results["req"]["url"] == "https://api.example.com/user"
    assert run.results["attempts"] == [
        {
            "resolved_ip": "192.0.2.7",
            "response_header": {"x-tier": ["g"]},
            "response_status_code": 200,
            "response_time_ms": 50,
        }
    ]
    assert "error" not in run.results


def test_post_with_interpolated_body_headers_and_query() -> None:
    p = policy(
        """
        url: 'https://api.example.com/v1/${req.headers["x-kind"][0]}',
        method: post,
        query_params: [{key: trace, value: 'true'},
                       {key: who, value: '${req.headers["x-user"][0]}'}],
        headers: {Content-Type: application/json, X-User: '${req.headers["x-user"][0]}'},
        body: '{"user": "${req.headers["x-user"][0]}"}'
        """.replace("\n", " ")
    )
    url = "https://api.example.com/v1/a%20b?trace=true&who=al%20ice%26bob"
    run = p.run({url: [ok()]}, headers=[("x-kind", "a b"), ("x-user", "al ice&bob")])
    (fetch,) = run.fetches
    assert fetch.url == url and fetch.method == "POST"
    assert fetch.body == b'{"user": "al ice&bob"}'
    assert ("content-type", "application/json") in fetch.headers
    assert ("x-user", "al ice&bob") in fetch.headers
    assert run.results["req"]["header"]["x-user"] == ["al ice&bob"]
    assert run.results["req"]["body"] == '{"user": "al ice&bob"}'


def test_the_response_phase_may_call_too() -> None:
    p = Policy(
        """
on_http_response:
  - actions:
      - type: http-request
        config: {url: "https://api.example.com/log?status=${string(res.status_code)}"}
"""
    )
    head = RequestHead(b"GET", b"/", b"app.example.com", b"https", [], b"1.1")
    exchange = p.policy.begin(conn(), ENDPOINT, head, "req-1")
    drive(exchange.on_http_request(head), lambda e: None)
    from edgeward.hooks import ResponseHead

    seen: list[Fetch] = []

    def perform(effect: Effect) -> EffectResult:
        assert isinstance(effect, Fetch)
        seen.append(effect)
        return ok()

    drive(exchange.on_http_response(ResponseHead(204, [])), perform)
    assert [f.url for f in seen] == ["https://api.example.com/log?status=204"]


# --- targets -----------------------------------------------------------------------------


def test_a_host_the_edge_config_does_not_allow_is_refused() -> None:
    p = policy(
        "url: 'https://${req.headers[\"x-to\"][0]}/x'",
        after="""
  - expressions: ["actions.ngrok.http_request.error.code != ''"]
    actions: [{type: custom-response, config: {body: "${actions.ngrok.http_request.error.code}"}}]
""",
    )
    run = p.run(headers=[("x-to", "evil.example.net")])
    assert run.fetches == []  # never asked the proxy
    assert run.status == 200 and run.outcome.body == b"ERR_EDGEWARD_3606"
    assert (
        "not in the edge config's http_request.allow_external" in (run.results["error"]["message"])
    )
    (event,) = [e for e in run.events if e.action == "http-request"]
    assert (event.verdict, event.error_code) == ("continue", "ERR_EDGEWARD_3606")


def test_on_error_halt_fails_the_request() -> None:
    p = policy("url: 'https://${req.headers[\"x-to\"][0]}/x', on_error: halt")
    run = p.run(headers=[("x-to", "10.0.0.1")])
    assert run.status == 502 and run.outcome.error_code == "ERR_EDGEWARD_3606"


def test_the_address_the_proxy_resolved_may_be_refused() -> None:
    p = policy("url: 'https://api.example.com/'")
    refused = FetchResult(
        0, error="resolved to 10.1.2.3", failure="refused", resolved_ip="10.1.2.3"
    )
    run = p.run({"https://api.example.com/": [refused]})
    assert run.results["error"]["code"] == "ERR_EDGEWARD_3606"
    assert run.results["attempts"][0]["resolved_ip"] == "10.1.2.3"


def test_internal_endpoints_are_fetched_whatever_allow_external_says() -> None:
    # The operator's own endpoints: yielded to the proxy (which serves them
    # itself), even when the edge config allows no external host.
    p = policy(
        "url: 'https://${req.headers[\"x-svc\"][0]}.internal:8443/ping?a=1'",
        rules=SimpleNamespace(hosts=(), networks=()),
    )
    url = "https://auth.internal:8443/ping?a=1"
    run = p.run({url: [ok("pong", headers=[("x-from", "auth")])]}, headers=[("x-svc", "auth")])
    assert [f.url for f in run.fetches] == [url]
    assert dict(run.fetches[0].headers)["edgeward-hops"] == "1"
    assert run.results["res"]["body"] == "pong" and "error" not in run.results
    # a constant internal URL loads without a warning
    loaded = policy("url: 'https://upstream-service.internal/ping'", rules=None)
    assert not loaded.policy.warnings


@pytest.mark.parametrize(
    ("failure", "code", "status"),
    [("internal", "ERR_EDGEWARD_3607", 502), ("loop", "ERR_EDGEWARD_3603", 508)],
)
def test_an_internal_endpoint_the_proxy_cannot_reach(failure: str, code: str, status: int) -> None:
    url = "https://gone.internal/"
    answer = FetchResult(0, error="no internal endpoint gone.internal is online", failure=failure)
    run = policy(f"url: '{url}'").run({url: [answer]})
    assert run.results["error"] == {"code": code, "message": answer.error}
    halted = policy(f"url: '{url}', on_error: halt").run({url: [answer]})
    assert (halted.status, halted.outcome.error_code) == (status, code)


def test_a_constant_url_is_checked_at_load_when_the_edge_config_is_known() -> None:
    with pytest.raises(PolicyError, match=r"'evil\.example\.net' is not in the edge config"):
        policy("url: 'https://evil.example.net/'")
    policy("url: 'https://evil.example.net/'", rules=None)  # `policy check`: unknown
    with pytest.raises(PolicyError, match="absolute http"):
        policy("url: 'ftp://api.example.com/'")


@pytest.mark.parametrize(
    ("host", "refused"),
    [
        ("api.example.com", False),
        ("API.example.com.", False),
        ("example.com", True),
        ("x.api.example.com", True),
        ("a.partner.example", False),
        ("a.b.partner.example", False),
        ("partner.example", True),
        ("192.0.2.50", False),
        ("198.51.100.1", True),
        ("127.0.0.1", True),
        ("::1", True),
    ],
)
def test_host_rules(host: str, refused: bool) -> None:
    targets = ExternalTargets.from_rules(ALLOW)
    assert (targets.host_refusal(host.lower()) is not None) is refused


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.216.34", True),  # public
        ("2606:2800:220:1::1", True),
        ("192.0.2.9", True),  # listed (TEST-NET, not public)
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # shared address space
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fd00::1", False),
        ("fe80::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:192.0.2.9", True),
        ("not an ip", False),
    ],
)
def test_resolved_addresses(address: str, allowed: bool) -> None:
    assert ExternalTargets.from_rules(ALLOW).address_allowed(address) is allowed


def test_nothing_is_allowed_by_default() -> None:
    targets = ExternalTargets.from_rules(SimpleNamespace(hosts=(), networks=()))
    assert targets.host_refusal("api.example.com") and targets.host_refusal("93.184.216.34")


# --- redirects, retries, timeout, size, hops -------------------------------------------


def redirect(to: str, status: int = 302) -> FetchResult:
    return ok(status=status, headers=[("Location", to)])


def test_redirects_are_not_followed_by_default() -> None:
    run = policy("url: 'https://api.example.com/a'").run(
        {"https://api.example.com/a": [redirect("/b")]}
    )
    assert len(run.fetches) == 1 and run.results["res"]["status_code"] == 302


def test_redirects_up_to_max_redirects() -> None:
    p = policy("url: 'https://api.example.com/a', method: POST, body: x, max_redirects: 2")
    script = {
        "https://api.example.com/a": [redirect("/b", 307)],
        "https://api.example.com/b": [redirect("https://a.partner.example/c", 303)],
        "https://a.partner.example/c": [redirect("/d")],
    }
    run = p.run(script)
    assert [(f.url, f.method, f.body) for f in run.fetches] == [
        ("https://api.example.com/a", "POST", b"x"),
        ("https://api.example.com/b", "POST", b"x"),  # 307 keeps the method
        ("https://a.partner.example/c", "GET", b""),  # 303 makes a GET
    ]
    assert run.results["res"]["status_code"] == 302  # a third redirect: the answer
    assert len(run.results["attempts"]) == 1


def test_a_redirect_to_a_refused_host_fails() -> None:
    run = policy("url: 'https://api.example.com/a', max_redirects: 5").run(
        {"https://api.example.com/a": [redirect("http://169.254.169.254/latest/meta-data")]}
    )
    assert len(run.fetches) == 1 and run.results["error"]["code"] == "ERR_EDGEWARD_3606"


def test_retry_condition_with_attempts_and_last_attempt() -> None:
    p = policy(
        "url: 'https://api.example.com/', retry_condition: 'last_attempt.res.status_code >= 500'"
    )
    run = p.run({"https://api.example.com/": [ok(status=503), ok(status=502), ok("fine")]})
    assert len(run.fetches) == 3 and run.results["res"]["body"] == "fine"
    assert [a["response_status_code"] for a in run.results["attempts"]] == [503, 502, 200]
    run = p.run({"https://api.example.com/": [ok(status=500)]})
    assert len(run.fetches) == 4  # at most 3 retries
    p = policy("url: 'https://api.example.com/', retry_condition: 'attempts < 2'")
    assert len(p.run({"https://api.example.com/": [ok(status=500)]}).fetches) == 2


def test_retry_after_a_failed_connection() -> None:
    p = policy(
        "url: 'https://api.example.com/',"
        " retry_condition: \"last_attempt.error.code == 'ERR_EDGEWARD_3605'\""
    )
    failed = FetchResult(0, error="connection refused", failure="failed")
    run = p.run({"https://api.example.com/": [failed, ok("up")]})
    assert len(run.fetches) == 2 and run.results["res"]["body"] == "up"
    assert run.results["attempts"][0]["error"]["code"] == "ERR_EDGEWARD_3605"
    assert "error" not in run.results


def test_the_timeout_covers_retries() -> None:
    p = policy(
        "url: 'https://api.example.com/', timeout: 3s, on_error: halt, retry_condition: 'true'"
    )
    run = p.run({"https://api.example.com/": [ok(status=500)]}, seconds_per_fetch=1.5)
    # 3 s for everything: two fetches, then the deadline
    assert [round(f.timeout_s, 3) for f in run.fetches] == [3.0, 1.5]
    assert len(run.results["attempts"]) == 2 and "error" not in run.results
    slow = FetchResult(0, error="timed out", failure="timeout")
    run = p.run({"https://api.example.com/": [slow]})
    assert run.status == 504 and run.outcome.error_code == "ERR_EDGEWARD_3602"
    assert len(run.fetches) == 1  # a timeout is not retried


def test_a_response_over_256_kib() -> None:
    too_large = FetchResult(0, error="response larger than 262144 bytes", failure="too_large")
    run = policy("url: 'https://api.example.com/'").run({"https://api.example.com/": [too_large]})
    assert run.results["error"] == {
        "code": "ERR_EDGEWARD_3601",
        "message": "the response body is larger than 256 KiB",
    }


@pytest.mark.parametrize(("incoming", "sent"), [(None, "1"), ("0", "1"), ("2", "3")])
def test_the_hop_header_counts_up(incoming: str | None, sent: str) -> None:
    headers = [("edgeward-hops", incoming)] if incoming is not None else []
    run = policy("url: 'https://api.example.com/'").run(
        {"https://api.example.com/": [ok()]}, headers=headers
    )
    assert dict(run.fetches[0].headers)["edgeward-hops"] == sent


@pytest.mark.parametrize("incoming", ["3", "17", "x", "-1", "99999"])
def test_past_the_hop_limit_the_request_is_refused(incoming: str) -> None:
    p = policy("url: 'https://api.example.com/', on_error: halt")
    run = p.run(headers=[("edgeward-hops", incoming)])
    assert run.fetches == [] and run.status == 508
    assert run.outcome.error_code == "ERR_EDGEWARD_3603"


# --- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("url: 'https://api.example.com', method: HEAD", "method must be one of"),
        ("url: 'https://api.example.com', headers: {Host: x}", "cannot be set"),
        ("url: 'https://api.example.com', headers: {edgeward-hops: '0'}", "cannot be set"),
        ("url: 'https://api.example.com', headers: {content-length: '1'}", "cannot be set"),
        ("url: 'https://api.example.com', timeout: 31s", "at most 30"),
        ("url: 'https://api.example.com', timeout: 500ms", "at least 1"),
        ("url: 'https://api.example.com', max_redirects: 101", "at most 100"),
        ("url: 'https://api.example.com', on_error: retry", "on_error must be one of"),
        ("url: 'https://api.example.com', retry_condition: 'attempts'", "has type int, not bool"),
        ("url: 'https://api.example.com', retry_condition: 'last_attempt.nope'", "nope"),
        ("url: 'https://${req.nope}'", "req.nope"),
        ("method: GET", "missing required field 'url'"),
        ("url: 'https://api.example.com', query_params: [{key: a}]", "missing required field"),
    ],
)
def test_config_errors(config: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message.replace("(", r"\(")):
        policy(config)


def test_retry_condition_reads_request_variables() -> None:
    # `req.*` in a retry condition must be in the phase's activation
    p = policy(
        "url: 'https://api.example.com/',"
        " retry_condition: \"req.url.path == '/retry' && attempts < 2\""
    )
    assert len(p.run({"https://api.example.com/": [ok()]}, url="/retry").fetches) == 2
    assert len(p.run({"https://api.example.com/": [ok()]}, url="/no").fetches) == 1


def test_only_in_http_phases() -> None:
    with pytest.raises(PolicyError, match="cannot run in on_tcp_connect"):
        Policy("on_tcp_connect: [{actions: [{type: http-request, config: {url: 'https://x'}}]}]")


# --- end to end ---------------------------------------------------------------------------

EDGE = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
http_request:
  allow_external: {allow}
endpoints:
  - name: app
    hostname: 127.0.0.1
    upstream: {upstream}
    traffic_policy_file: {policy}
"""


@pytest.fixture
def edge_with(tmp_path: Path) -> Iterator[Any]:
    from tests.proxy.proxy_support import start_edge

    started: list[Any] = []

    def start(policy: str, upstream: str, backend: str, allow: str = "[127.0.0.1]") -> Any:
        policy_file = tmp_path / f"policy{len(started)}.yml"
        policy_file.write_text(policy)
        import os

        saved = os.environ.get("EDGEWARD_BACKEND")
        os.environ["EDGEWARD_BACKEND"] = backend
        try:
            edge = start_edge(tmp_path, EDGE, allow=allow, upstream=upstream, policy=policy_file)
        finally:
            if saved is None:
                del os.environ["EDGEWARD_BACKEND"]
            else:
                os.environ["EDGEWARD_BACKEND"] = saved
        started.append(edge)
        return edge

    yield start
    for edge in started:
        edge.stop()


SHOW = """
  - actions:
      - type: custom-response
        config:
          headers: {content-type: application/json}
          body: '${json.encode(actions.ngrok.http_request)}'
"""


def service() -> dict[str, Any]:
    """Routes of the service the policy calls (state in closures)."""
    flaky = {"left": 2}

    def echo(h: Handler) -> Reply:
        data = {
            "method": h.command,
            "path": h.path,
            "headers": {k.lower(): v for k, v in h.headers.items()},
            "body": h.body.decode(),
        }
        return 200, [("content-type", "application/json")], json.dumps(data).encode()

    def hop(target: str) -> Any:
        return lambda h: (302, [("location", target)], b"")

    def flaky_route(h: Handler) -> Reply:
        if flaky["left"] > 0:
            flaky["left"] -= 1
            return 503, [], b"busy"
        return 200, [], b"recovered"

    def slow(h: Handler) -> Reply:
        time.sleep(3)
        return 200, [], b"late"

    return {
        "/echo": echo,
        "/r1": hop("/r2"),
        "/r2": hop("/echo"),
        "/flaky": flaky_route,
        "/slow": slow,
        "/big": lambda h: (200, [], b"x" * (300 * 1024)),
        "/fits": lambda h: (200, [], b"y" * (256 * 1024)),
    }


def call(edge: Any, path: str = "/", **kw: Any) -> tuple[int, Any]:
    r = httpx.get(edge.url(path), timeout=15, **kw)
    try:
        return r.status_code, r.json()
    except ValueError:
        return r.status_code, r.headers.get("edgeward-error")


@pytest.mark.parametrize("backend", BACKENDS)
def test_e2e_request_response_and_redirects(edge_with: Any, backend: str) -> None:
    with serve(service()) as svc, serve({}) as upstream:
        policy = f"""
on_http_request:
  - actions:
      - type: http-request
        config:
          url: "{svc.url}/${{req.url.path.substring(1)}}"
          method: POST
          query_params: [{{key: city, value: "${{req.headers['x-city'][0]}}"}}]
          headers: {{x-api-key: k1}}
          body: "from ${{conn.client_ip}}"
          max_redirects: 2
{SHOW}"""
        edge = edge_with(policy, upstream.url, backend)
        status, result = call(edge, "/echo", headers={"x-city": "San Francisco"})
        assert status == 200, result
        sent = json.loads(result["res"]["body"])
        assert sent["method"] == "POST" and sent["body"] == "from 127.0.0.1"
        assert sent["path"] == "/echo?city=San%20Francisco"
        assert sent["headers"]["x-api-key"] == "k1" and sent["headers"]["edgeward-hops"] == "1"
        assert sent["headers"]["user-agent"] == "edgeward"
        assert result["res"]["resolved_ip"] == "127.0.0.1" and result["res"]["status_code"] == 200
        assert result["req"]["url"] == f"{svc.url}/echo?city=San%20Francisco"
        # two redirects are followed (302 after a POST: a GET)
        status, result = call(edge, "/r1", headers={"x-city": "x"})
        assert json.loads(result["res"]["body"])["method"] == "GET"
        assert svc.hits == {"/echo": 2, "/r1": 1, "/r2": 1}
        assert upstream.hits == {}  # custom-response answered


@pytest.mark.parametrize("backend", BACKENDS)
def test_e2e_retries_timeout_and_size_cap(edge_with: Any, backend: str) -> None:
    with serve(service()) as svc, serve({}) as upstream:
        policy = f"""
on_http_request:
  - actions:
      - type: http-request
        config:
          url: "{svc.url}${{req.url.path}}"
          timeout: 1s
          retry_condition: "last_attempt.res.status_code == 503"
{SHOW}"""
        edge = edge_with(policy, upstream.url, backend)
        status, result = call(edge, "/flaky")
        assert status == 200
        assert [a["response_status_code"] for a in result["attempts"]] == [503, 503, 200]
        assert result["res"]["body"] == "recovered"
        status, result = call(edge, "/slow")
        assert (
            status == 200 and result["error"]["code"] == "ERR_EDGEWARD_3602" and "res" not in result
        )
        status, result = call(edge, "/big")
        assert status == 200 and result["error"]["code"] == "ERR_EDGEWARD_3601"
        _, result = call(edge, "/fits")
        assert len(result["res"]["body"]) == 256 * 1024 and "error" not in result
        timeouts = [e for e in events(edge) if e.get("error_code") == "ERR_EDGEWARD_3602"]
        assert timeouts and timeouts[0]["verdict"] == "continue"


@pytest.mark.parametrize("backend", BACKENDS)
def test_e2e_ssrf_refusals(edge_with: Any, backend: str) -> None:
    with serve(service()) as svc, serve({}) as upstream:
        policy = f"""
on_http_request:
  - actions:
      - type: http-request
        config:
          url: "http://${{req.headers['x-to'][0]}}:{svc.port}/echo"
          on_error: halt
  - actions: [{{type: custom-response, config: {{body: called}}}}]
"""
        # `localhost` is allowed by name, but it resolves to a loopback
        # address, which is refused unless its range is listed too.
        edge = edge_with(policy, upstream.url, backend, allow="[localhost, 192.0.2.0/24]")
        r = httpx.get(edge.url("/"), headers={"x-to": "localhost"}, timeout=15)
        assert (r.status_code, r.headers["edgeward-error"]) == (502, "ERR_EDGEWARD_3606")
        r = httpx.get(edge.url("/"), headers={"x-to": "127.0.0.1"}, timeout=15)
        assert (r.status_code, r.headers["edgeward-error"]) == (502, "ERR_EDGEWARD_3606")
        assert svc.hits == {}
        refused = [e for e in events(edge) if e.get("error_code") == "ERR_EDGEWARD_3606"]
        assert any("resolved to" in str(e["reason"]) for e in refused)
        # with the range listed, the same name is called
        edge = edge_with(policy, upstream.url, backend, allow="[localhost, 127.0.0.0/8, '::1']")
        r = httpx.get(edge.url("/"), headers={"x-to": "localhost"}, timeout=15)
        assert (r.status_code, r.text) == (200, "called") and svc.hits == {"/echo": 1}


@pytest.mark.parametrize("backend", BACKENDS)
def test_e2e_a_policy_calling_its_own_edge_stops_at_the_hop_limit(
    edge_with: Any, backend: str
) -> None:
    with serve({"/": lambda h: (200, [], b"upstream")}) as upstream:
        # Every request calls the edge itself and answers with what that
        # call gave: the fourth edge-to-edge hop is refused.
        policy = """
on_http_request:
  - actions:
      - type: http-request
        config: {url: "http://127.0.0.1:${string(conn.server_port)}/loop"}
      - type: custom-response
        config:
          body: >-
            ${has(actions.ngrok.http_request.error)
              ? actions.ngrok.http_request.error.code
              : '[' + actions.ngrok.http_request.res.body + ']'}
"""
        edge = edge_with(policy, upstream.url, backend)
        r = httpx.get(edge.url("/"), timeout=15)
        assert r.text == "[[[ERR_EDGEWARD_3603]]]"
        assert upstream.hits == {}


# --- the edge config key --------------------------------------------------------------


def _edge_config(tmp_path: Path, http_request: str) -> Any:
    from edgeward.config import load_config

    (tmp_path / "edge.yml").write_text(
        "listeners: [{name: web, address: 127.0.0.1:8080}]\n"
        f"http_request:\n{textwrap.indent(textwrap.dedent(http_request), '  ')}"
    )
    return load_config(tmp_path / "edge.yml")


def test_edge_config_allow_external(tmp_path: Path) -> None:
    import ipaddress

    config = _edge_config(
        tmp_path,
        """
        allow_external:
          - API.example.com
          - "*.partner.example"
          - 10.1.0.0/16
          - 203.0.113.7
          - "::1"
        """,
    )
    assert config.http_request.hosts == ("api.example.com", "*.partner.example")
    assert config.http_request.networks == tuple(
        ipaddress.ip_network(n) for n in ("10.1.0.0/16", "203.0.113.7/32", "::1/128")
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("allow_external: [not a host]", "edge.yml:3:20: http_request.allow_external[0]: not a"),
        ("allow_external: ['*']", "not a host name"),
        ("allow_external: [1]", "must be a host name"),
        ("allow_external: api.example.com", "must be a list"),
        ("allow: [api.example.com]", "unknown key 'allow'"),
    ],
)
def test_edge_config_errors(tmp_path: Path, body: str, message: str) -> None:
    from edgeward.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        _edge_config(tmp_path, body)
    assert message in str(caught.value)


def test_the_edge_config_reaches_the_policy(tmp_path: Path) -> None:
    from edgeward.config import load_config
    from edgeward.policy import PolicyCompiler

    (tmp_path / "policy.yml").write_text(
        "on_http_request: [{actions: [{type: http-request, config: {url: 'https://other.test/'}}]}]"
    )
    (tmp_path / "edge.yml").write_text(
        "listeners: [{name: web, address: 127.0.0.1:8080}]\n"
        "http_request: {allow_external: [api.example.com]}\n"
        "endpoints: [{name: app, hostname: a.test, upstream: 'http://127.0.0.1:9',"
        " traffic_policy_file: policy.yml}]\n"
    )
    with pytest.raises(PolicyError, match=r"'other\.test' is not in the edge config"):
        load_config(tmp_path / "edge.yml", PolicyCompiler(events=ListSink()))


# --- internal endpoints, end to end ------------------------------------------------------

INTERNAL_EDGE = """
listeners:
  - name: web
    address: 127.0.0.1:{port_web}
endpoints:
  - hostname: app.example.com
    upstream: http://127.0.0.1:9
    traffic_policy:
      on_http_request:
        - actions:
            - type: http-request
              config:
                url: "https://svc.internal/echo?q=${{req.url.query_params['q'][0]}}"
                method: POST
                headers:
                  x-caller: app
                body: "hello"
            - type: custom-response
              config:
                headers:
                  content-type: application/json
                body: '${{json.encode(actions.ngrok.http_request)}}'
  - hostname: svc.internal
    upstream: {svc}
    traffic_policy:
      on_http_request:
        - actions:
            - type: add-headers
              config:
                headers:
                  x-seen-host: "${{req.host}}"
      on_http_response:
        - actions:
            - type: add-headers
              config:
                headers:
                  x-svc-policy: "ran"
  - hostname: big.example.com
    upstream: http://127.0.0.1:9
    traffic_policy:
      on_http_request:
        - actions:
            - type: http-request
              config:
                url: "http://svc.internal${{req.url.path}}"
                method: POST
                body: "streamed to the upstream"
            - type: custom-response
              config:
                body: >-
                  ${{has(actions.ngrok.http_request.error)
                    ? actions.ngrok.http_request.error.code
                    : string(size(actions.ngrok.http_request.res.body))}}
  - hostname: missing.example.com
    upstream: http://127.0.0.1:9
    traffic_policy:
      on_http_request:
        - expressions: ["req.url.path == '/halt'"]
          actions:
            - type: http-request
              config:
                url: "https://nope.internal/"
                on_error: halt
        - actions:
            - type: http-request
              config:
                url: "https://nope.internal/"
            - type: custom-response
              config:
                status_code: 503
                body: "fallback ${{actions.ngrok.http_request.error.code}}"
  - hostname: loop.example.com
    upstream: http://127.0.0.1:9
    traffic_policy:
      on_http_request:
        - actions:
            - type: http-request
              config:
                url: "https://loop.internal/"
            - type: custom-response
              config:
                body: "outer ${{actions.ngrok.http_request.res.body}}"
  - hostname: loop.internal
    upstream: http://127.0.0.1:9
    traffic_policy:
      on_http_request:
        - actions:
            - type: http-request
              config:
                url: "https://loop.internal/"
            - type: custom-response
              config:
                body: "inner ${{actions.ngrok.http_request.error.code}}"
"""


def test_e2e_internal_endpoints(tmp_path: Path) -> None:
    from tests.proxy.proxy_support import start_edge

    with serve(service()) as svc:
        edge = start_edge(tmp_path, INTERNAL_EDGE, svc=svc.url)
        try:

            def get(host: str, path: str = "/") -> httpx.Response:
                return httpx.get(edge.url(path), headers={"host": host}, timeout=15)

            r = get("app.example.com", "/?q=a%20b")
            assert r.status_code == 200, r.text
            result = r.json()
            res = result["res"]
            assert res["status_code"] == 200 and "error" not in result
            assert res["header"]["x-svc-policy"] == ["ran"]  # its response phase
            seen = json.loads(res["body"])
            assert (seen["method"], seen["path"], seen["body"]) == (
                "POST",
                "/echo?q=a%20b",
                "hello",
            )
            headers = seen["headers"]
            assert headers["x-seen-host"] == "svc.internal"  # its request phase
            assert headers["host"] == "svc.internal" and headers["x-caller"] == "app"
            assert headers["edgeward-hops"] == "1"
            assert svc.hits == {"/echo": 1}  # the internal endpoint's upstream, not DNS

            assert get("big.example.com", "/fits").text == str(256 * 1024)
            assert get("big.example.com", "/big").text == "ERR_EDGEWARD_3601"

            r = get("missing.example.com")
            assert (r.status_code, r.text) == (503, "fallback ERR_EDGEWARD_3607")
            r = get("missing.example.com", "/halt")
            assert (r.status_code, r.headers["edgeward-error"]) == (502, "ERR_EDGEWARD_3607")

            r = get("loop.example.com")  # loop.internal calling itself
            assert (r.status_code, r.text) == (200, "outer inner ERR_EDGEWARD_3603")
        finally:
            edge.stop()
