"""The native phase runner (`policy.native_phase`) against the Python engine.

Each example compiles one generated policy twice, with and without the
runner, and drives the same generated exchange through both: the decision
(what is forwarded, or the answer), the response as the client gets it and
the events must be the same. The example suites of `policy test` run on the
engine as the edge does (`run_case` without a trace) in test_examples_*.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeward import native
from edgeward.bench.policy import load as load_cases
from edgeward.document import parse_document
from edgeward.hooks import (
    CloseConnection,
    ConnectionInfo,
    Forward,
    LocalResponse,
    PassResponse,
    RequestHead,
    ResponseHead,
)
from edgeward.policy import CompiledPolicy, compile_policy
from edgeward.policy.actions.rate_limit import RateLimit
from edgeward.policy.cases import check, run_case
from edgeward.policy.events import ListSink
from edgeward.policy.native_phase import run_request, run_response
from edgeward.policy.ratelimit import MemoryStore

from .helpers import ENDPOINT, NOW

pytestmark = pytest.mark.skipif(
    native.PhaseRunner is None, reason="the native module is not loaded (the engine runs alone)"
)

# --- generated policies ------------------------------------------------------------

STRINGS = st.sampled_from(["", "a", "/admin", "GET", "x", "192.0.2.10", "app.example.com", "%2F"])
HEADER_NAMES = ["x-a", "x-b", "user-agent", "content-length", "location", "accept", "cookie"]
STRING_VARS = [
    "req.method",
    "req.url.path",
    "req.url.raw_path",
    "req.url.query",
    "req.url.host",
    "req.url.scheme",
    "req.url",
    "req.url.uri",
    "req.url.authority",
    "req.host",
    "req.version",
    "req.user_agent",
    "conn.client_ip",
    "conn.server_ip",
    "conn.server_region",
    "endpoint.name",
    "vars.v",
]
INT_VARS = [
    "conn.client_port",
    "conn.server_port",
    "conn.bytes_in",
    "req.content_length",
    "req.url.port",
]


@st.composite
def string_expr(draw: st.DrawFn) -> str:
    var = draw(st.sampled_from(STRING_VARS))
    op = draw(st.sampled_from(["==", "!=", "startsWith", "contains", "endsWith", "matches"]))
    lit = draw(STRINGS)
    if op in ("==", "!="):
        return f"{var} {op} {json.dumps(lit)}"
    if op == "matches":
        return f"{var}.matches({json.dumps('^' + lit.replace('%', ''))})"
    return f"{var}.{op}({json.dumps(lit)})"


@st.composite
def expression(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(
        st.sampled_from(["string", "int", "header", "in", "has", "ip", "cookie", "ua", "bool"])
    )
    if kind == "string":
        e = draw(string_expr())
    elif kind == "int":
        var = draw(st.sampled_from(INT_VARS))
        e = f"{var} {draw(st.sampled_from(['<', '>', '==']))} {draw(st.integers(0, 70000))}"
    elif kind == "header":
        name = draw(st.sampled_from(HEADER_NAMES))
        e = draw(
            st.sampled_from(
                [
                    f"'{name}' in req.headers",
                    f"req.headers['{name}'][0] == 'a'",
                    f"size(req.headers) > {draw(st.integers(0, 3))}",
                    f"'{name}' in res.headers",
                ]
            )
        )
    elif kind == "in":
        e = "req.method in ['GET', 'POST', 'DELETE']"
    elif kind == "has":
        e = draw(
            st.sampled_from(
                [
                    "has(req.content_length)",
                    "has(req.location)",
                    "has(res.location)",
                    "has(vars.w)",
                    "vars.w == vars.v",
                ]
            )
        )
    elif kind == "ip":
        e = "inCidrRange(conn.client_ip, '192.0.2.0/24')"
    elif kind == "cookie":
        e = "'s' in req.cookies && req.cookies['s'][0].value == 'a'"
    elif kind == "ua":
        e = "req.user_agent.is_bot"
    else:
        e = draw(
            st.sampled_from(
                ["true", "false", "res.status_code >= 400", "'a' in req.url.query_params"]
            )
        )
    if depth < 2 and draw(st.booleans()):
        other = draw(expression(depth + 1))
        return f"({e}) {draw(st.sampled_from(['&&', '||']))} ({other})"
    return e


TEMPLATES = st.sampled_from(
    [
        "v",
        "${req.method}",
        "${req.url.path}-${conn.client_ip}",
        "${req.headers['x-a'][0]}",  # fails when there is none
        "${req.user_agent}",
        "${vars.v}",  # fails unless a set-vars ran
        "${res.status_code}",
    ]
)


@st.composite
def plain_action(draw: st.DrawFn, response: bool) -> dict[str, Any]:
    kinds = ["add-headers", "remove-headers", "restrict-ips", "set-vars", "log"]
    request_only = ["rate-limit", "url-rewrite", "basic-auth"]
    kind = draw(st.sampled_from(kinds if response else [*kinds, *request_only]))
    if kind == "basic-auth":
        return {"type": kind, "config": draw(basic_auth())}
    if kind == "url-rewrite":
        return {"type": kind, "config": draw(url_rewrite())}
    if kind == "add-headers":
        names = draw(
            st.lists(
                st.sampled_from(["x-a", "x-c", "host"] if not response else ["x-a", "x-c"]),
                min_size=1,
                max_size=3,
                unique=True,
            )
        )
        return {"type": kind, "config": {"headers": {n: draw(TEMPLATES) for n in names}}}
    if kind == "remove-headers":
        names = draw(st.lists(st.sampled_from(["x-a", "x-b", "accept"]), min_size=1, max_size=2))
        return {"type": kind, "config": {"headers": names}}
    if kind == "restrict-ips":
        allow = draw(
            st.sampled_from([["192.0.2.0/24"], ["198.51.100.0/24"], ["0.0.0.0/0", "::/0"]])
        )
        config: dict[str, Any] = {"allow": allow}
        if draw(st.booleans()):
            config["enforce"] = False
        return {"type": kind, "config": config}
    if kind == "rate-limit":
        return {"type": kind, "config": draw(rate_limit())}
    if kind == "set-vars":
        return {"type": kind, "config": draw(set_vars())}
    metadata = {"m": draw(TEMPLATES)}
    if draw(st.booleans()):  # values of every shape, some failing
        metadata["n"] = draw(VAR_VALUES)
    return {"type": kind, "config": {"metadata": metadata}}


@st.composite
def basic_auth(draw: st.DrawFn) -> dict[str, Any]:
    """Credentials known at load (the runner checks them) or rendered per
    request (the engine's), refusing or only recording."""
    credentials = draw(
        st.sampled_from(
            [
                ["alice:password1"],
                ["alice:password1", "bob:pa:ss:word"],
                [{"username": "bob", "password": "pa:ss:word"}],
                ["${req.method}:password1"],  # dynamic
                ["alice:password1", "${req.headers['x-a'][0]}:password1"],  # fails without x-a
            ]
        )
    )
    config: dict[str, Any] = {"credentials": credentials}
    if draw(st.booleans()):
        config["realm"] = draw(st.sampled_from(["ngrok", "staff area"]))
    if draw(st.booleans()):
        config["enforce"] = False
    return config


@st.composite
def url_rewrite(draw: st.DrawFn) -> dict[str, Any]:
    """On the URL forwarded so far (after add-headers' host, earlier
    rewrites): new paths, queries and hosts, URLs the action refuses (not
    http(s), a space, a tab that urlsplit drops), no match, no change."""
    to = draw(
        st.sampled_from(
            [
                "https://${req.host}/v2$1",
                "http://up.example:8080/x?q=${req.method}&u=${req.user_agent}",
                "https://h.example/$1#frag",
                "ftp://h.example/",  # refused
                "https://h.example/a b",  # refused
                "https://h.example/a\tb",
                "/relative",  # refused
                "$0",
                "https://x.example/${req.headers['x-a'][0]}",  # fails without x-a
            ]
        )
    )
    pattern = draw(
        st.sampled_from([None, "^https://[^/]+(/.*)$", "(/admin|/a)", "nomatch", "${req.method}"])
    )
    config: dict[str, Any] = {"to": to}
    if pattern is not None:
        config["from"] = pattern
    return config


VAR_VALUES = st.sampled_from(
    [
        "v",
        3,
        True,
        None,
        "${req.method}",  # a whole expression: its type
        "${conn.client_port}",
        "${req.headers}",
        "${req.url.query_params}",
        "${req}",
        "${req.url.path}-${conn.client_ip}",  # text
        "${vars.v}-x",  # reads an earlier entry (fails when there is none)
        "${vars.v + 'x'}",  # fails unless vars.v is a string
        "${req.headers['x-a'][0]}",  # fails when there is none
        ["${req.method}", 1, {"k": "${req.url.query}"}],
        {"k": "${req.url.path}", "n": None, "l": ["${vars.w}"]},
    ]
)


@st.composite
def set_vars(draw: st.DrawFn) -> dict[str, Any]:
    """Entries set in order, later ones reading earlier ones; any may
    fail, after others were set (the runner then leaves `vars` as it was)."""
    entries = draw(
        st.lists(st.tuples(st.sampled_from(["v", "w"]), VAR_VALUES), min_size=1, max_size=3)
    )
    return {"vars": [{name: value} for name, value in entries]}


BUCKET_KEYS = [
    "conn.client_ip",
    "req.url.path",  # Latin-1 and percent-decoded text: JSON of non-ASCII
    "req.headers['x-a'][0]",  # fails when there is none
    "req.headers['user-agent']",  # a list: JSON in the engine
    "vars.v",  # fails unless a set-vars ran
    "size(req.headers)",  # an int
    "'a\"b\\\\c\\n'",  # JSON escapes
]


@st.composite
def rate_limit(draw: st.DrawFn) -> dict[str, Any]:
    """Capacities the 1–3 exchanges of an example exceed; a shared bucket
    (no key that differs) or one per value."""
    return {
        "name": "t",
        "algorithm": "sliding_window",
        "capacity": draw(st.integers(1, 2)),
        "rate": "60s",
        "bucket_key": draw(st.lists(st.sampled_from(BUCKET_KEYS), min_size=1, max_size=3)),
        "enforce": draw(st.booleans()),
    }


@st.composite
def terminal_action(draw: st.DrawFn, response: bool) -> dict[str, Any]:
    kinds = ["custom-response"] if response else ["deny", "custom-response", "redirect"]
    kind = draw(st.sampled_from(kinds))
    if kind == "deny":
        return {"type": kind, "config": {"status_code": draw(st.sampled_from([403, 404, 451]))}}
    if kind == "custom-response":
        return {
            "type": kind,
            "config": {
                "status_code": 418,
                "body": draw(TEMPLATES),
                "headers": {"x-r": draw(TEMPLATES)},
            },
        }
    return {"type": kind, "config": draw(redirect())}


@st.composite
def redirect(draw: st.DrawFn) -> dict[str, Any]:
    """With and without `from` (a constant regex, or one interpolated: the
    engine's), `to` with groups and percent-encoded values, URLs that do
    not match or do not change (the rule goes on), headers that fail."""
    config: dict[str, Any] = {
        "to": draw(
            st.sampled_from(
                [
                    "https://other.example${req.url.path}",
                    "https://other.example/$1?u=${req.user_agent}",
                    "https://${req.host}${req.url.uri}",  # the same URL, when `from` is absent
                    "$0",
                    "https://x.example/${req.headers['x-a'][0]}",  # fails without x-a
                    "https://x.example/${req.url.query_params}",  # not a string: fails
                ]
            )
        )
    }
    pattern = draw(
        st.sampled_from(
            [None, "^https://[^/]+/(admin|a)(.*)$", "/(\\w+)", "nomatch", "${req.method}"]
        )
    )
    if pattern is not None:
        config["from"] = pattern
    if draw(st.booleans()):
        config["status_code"] = draw(st.sampled_from([301, 307, 308]))
    if draw(st.booleans()):
        config["headers"] = {"x-r": draw(TEMPLATES), "cache-control": "no-store"}
    return config


@st.composite
def rule(draw: st.DrawFn, response: bool) -> dict[str, Any]:
    actions = draw(st.lists(plain_action(response), max_size=3))
    if not actions or draw(st.booleans()):
        actions.append(draw(terminal_action(response)))
    out: dict[str, Any] = {"actions": actions}
    expressions = draw(st.lists(expression(), max_size=2))
    if not response:  # res.* is declared in the response phase only
        expressions = [e for e in expressions if "res." not in e]
    if expressions:
        out["expressions"] = expressions
    if draw(st.booleans()):
        out["on_error"] = "continue"
    if not response:
        out["actions"] = [a for a in actions if "res.status_code" not in json.dumps(a)] or [
            {"type": "deny"}
        ]
    return out


@st.composite
def policy(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {"on_http_request": draw(st.lists(rule(False), min_size=1, max_size=6))}
    if draw(st.booleans()):
        doc["on_http_response"] = draw(st.lists(rule(True), min_size=1, max_size=3))
    return doc


# --- generated exchanges -----------------------------------------------------------

TARGETS = st.sampled_from(
    ["/", "/admin/x", "/a%2Fb?x=1", "/%C3%A9t%E9?a=1&a=2", "?q", "/p?s=%3Cscript", "/.env", ""]
)
HEADER_VALUES = st.sampled_from(
    ["a", "b", "12", " 7 ", "sqlmap/1.0", "Googlebot/2.1", "s=a; t=b", ""]
)


def _basic(credential: bytes, scheme: bytes = b"Basic ") -> bytes:
    return scheme + base64.b64encode(credential)


AUTHORIZATIONS = st.sampled_from(
    [
        _basic(b"alice:password1"),
        _basic(b"bob:pa:ss:word", b"bAsIc "),
        _basic(b"alice:password2"),  # wrong password
        _basic(b"GET:password1"),  # the dynamic credential's
        _basic(b"alice:password1", b"Basic  ") + b" \t",  # stripped
        _basic(b"\xe9\xff:password1"),  # not UTF-8: shown with U+FFFD
        _basic(b"nocolon"),
        b"Basic YWxpY2U",  # unpadded: Python's decoder decides
        b"Basic YWxpY2U6cGFzc3dvcmQx===",  # excess padding: likewise
        b"Basic YR==",  # non-zero trailing bits
        b"Basic !!",
        b"Basic",
        b"basic ",
        b"Basic\tYQ==",  # not the Basic scheme
        b"Bearer abc",
    ]
)


@st.composite
def exchange(draw: st.DrawFn) -> dict[str, Any]:
    headers = draw(st.lists(st.tuples(st.sampled_from(HEADER_NAMES), HEADER_VALUES), max_size=5))
    headers = [(n.encode(), v.encode()) for n, v in headers]
    for value in draw(st.lists(AUTHORIZATIONS, max_size=2)):  # none, one, or the header twice
        name = draw(st.sampled_from([b"authorization", b"Authorization"]))
        headers.insert(draw(st.integers(0, len(headers))), (name, value))
    return {
        "method": draw(st.sampled_from([b"GET", b"POST", b"DELETE"])),
        "target": draw(TARGETS).encode(),
        "authority": draw(
            st.sampled_from([b"app.example.com", b"App.Example.com:8443", b"[::1]:80", b"u:p@h"])
        ),
        "headers": headers,
        "version": draw(st.sampled_from([b"1.1", b"2", b"1.0"])),
        "client_ip": draw(st.sampled_from(["192.0.2.10", "198.51.100.7", "2001:db8::1"])),
        "status": draw(st.sampled_from([200, 404, 503])),
        "res_headers": [
            (n.encode(), v.encode())
            for n, v in draw(
                st.lists(
                    st.tuples(st.sampled_from(["x-a", "location", "x-b"]), HEADER_VALUES),
                    max_size=3,
                )
            )
        ],
    }


def compiled(doc: dict[str, Any], native_runner: bool) -> tuple[CompiledPolicy, ListSink]:
    sink = ListSink()
    policy = compile_policy(
        parse_document(json.dumps(doc), "policy.yml"),
        ip_policies={},
        events=sink,
        clock=lambda: NOW,
    )
    if not native_runner:
        policy._request = dataclasses.replace(policy._request, runner=None)
        policy._response = dataclasses.replace(policy._response, runner=None)
        for rules in policy.rules.values():  # the reference store too
            for r in rules:
                for step in r.steps:
                    if isinstance(step.action, RateLimit):
                        step.action.store = MemoryStore()
    return policy, sink


def drive(policy: CompiledPolicy, sink: ListSink, x: dict[str, Any]) -> list[Any]:
    conn = ConnectionInfo(
        "c1", "public", x["client_ip"], 50123, "127.0.0.1", 443, NOW - 1, bytes_in=120
    )
    head = RequestHead(
        x["method"], x["target"], x["authority"], b"https", list(x["headers"]), x["version"]
    )
    ex = policy.begin(conn, ENDPOINT, head, "req-1")
    outcome = ex.on_http_request(head)
    assert not hasattr(outcome, "send"), "no effects in these policies"
    seen: list[Any] = []
    if isinstance(outcome, Forward):
        h = outcome.head
        seen.append(("forward", h.method, h.target, h.authority, h.headers, outcome.body))
        response = ResponseHead(x["status"], list(x["res_headers"]))
        answer = ex.on_http_response(response)
        assert not hasattr(answer, "send")
        if isinstance(answer, PassResponse):
            seen.append(("pass", answer.head.status, answer.head.headers))
        else:
            seen.append(_answer(answer))
    else:
        seen.append(_answer(outcome))
    seen.append([dataclasses.astuple(e) for e in sink.events])
    return seen


def assert_same_on_both(
    doc: dict[str, Any], exchanges: list[dict[str, Any]], *, runs: bool = False
) -> None:
    """Each exchange in turn gives the same outcome and events with the
    runner as with the engine alone (`runs`: the request phase has one)."""
    with_runner, sink1 = compiled(doc, True)
    reference, sink2 = compiled(doc, False)
    assert not runs or with_runner._request.runner is not None
    for x in exchanges:
        assert drive(with_runner, sink1, x) == drive(reference, sink2, x)
        sink1.events.clear()
        sink2.events.clear()


def request_once(policy: CompiledPolicy) -> tuple[RequestHead, Any, Any, Any]:
    """`run_request` of the policy's runner on one plain GET: the request
    to forward, where the engine resumes, the answer, the `vars`."""
    conn = ConnectionInfo("c1", "public", "192.0.2.10", 50123, "127.0.0.1", 443, NOW - 1)
    head = RequestHead(b"GET", b"/a?b", b"app.example.com", b"https", [], b"1.1")
    ex = policy.begin(conn, ENDPOINT, head, "req-1")
    runner = policy._request.runner
    assert runner is not None
    return run_request(runner, ex, head, policy.conn_fields, policy._request.rules)


def _answer(outcome: Any) -> Any:
    if isinstance(outcome, LocalResponse):
        return ("answer", outcome.status, outcome.headers, outcome.body, outcome.error_code)
    assert isinstance(outcome, CloseConnection), outcome
    return ("close",)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy(), st.lists(exchange(), min_size=1, max_size=3))
def test_native_runner_decides_as_the_engine(
    doc: dict[str, Any], exchanges: list[dict[str, Any]]
) -> None:
    assert_same_on_both(doc, exchanges, runs=True)


@st.composite
def rate_limited_policy(draw: st.DrawFn) -> dict[str, Any]:
    """Rules the generic policies rarely reach: a rate-limit (keys mostly
    strings, so the runner counts) after rules that may stop the runner
    for some requests (log, set-vars), so both paths count in one bucket."""
    config = draw(rate_limit())
    config["bucket_key"] = draw(
        st.lists(
            st.sampled_from(["conn.client_ip", "req.method", "req.url.path", *BUCKET_KEYS]),
            min_size=1,
            max_size=2,
        )
    )
    limited: dict[str, Any] = {"actions": [{"type": "rate-limit", "config": config}]}
    if draw(st.booleans()):
        limited["expressions"] = [draw(string_expr())]
    before = draw(st.lists(rule(False), max_size=2))
    for r in before:  # let some requests through to the limit
        r.setdefault("expressions", []).append(draw(string_expr()))
    after = draw(st.lists(rule(False), max_size=1))
    return {"on_http_request": [*before, limited, *after]}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rate_limited_policy(), st.lists(exchange(), min_size=2, max_size=6))
def test_native_rate_limit_counts_as_the_engine(
    doc: dict[str, Any], exchanges: list[dict[str, Any]]
) -> None:
    assert_same_on_both(doc, exchanges)


@st.composite
def authenticated_policy(draw: st.DrawFn) -> dict[str, Any]:
    """basic-auth, which the generic policies rarely reach with a
    credential: first or after rules that may stop the runner (a failing
    log, set-vars), and logs around it."""
    metadata = {"m": draw(TEMPLATES.filter(lambda t: "res." not in t)), "n": draw(VAR_VALUES)}
    log = {"type": "log", "config": {"metadata": metadata}}
    actions = [{"type": "basic-auth", "config": draw(basic_auth())}]
    if draw(st.booleans()):
        actions.insert(draw(st.integers(0, 1)), log)
    before = draw(st.lists(rule(False), max_size=2))
    for r in before:  # let some requests through to the check
        r.setdefault("expressions", []).append(draw(string_expr()))
    return {
        "on_http_request": [*before, {"actions": actions}, *draw(st.lists(rule(False), max_size=1))]
    }


@st.composite
def authenticated_exchange(draw: st.DrawFn) -> dict[str, Any]:
    """One Authorization header most of the time."""
    x = draw(exchange())
    x["headers"] = [(n, v) for n, v in x["headers"] if n.lower() != b"authorization"]
    if draw(st.integers(0, 5)):
        x["headers"].append((b"authorization", draw(AUTHORIZATIONS)))
    return x


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(authenticated_policy(), st.lists(authenticated_exchange(), min_size=1, max_size=3))
def test_native_basic_auth_decides_as_the_engine(
    doc: dict[str, Any], exchanges: list[dict[str, Any]]
) -> None:
    assert_same_on_both(doc, exchanges)


# --- the example suites of `policy test` ---------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"


def _replayed(policy_file: Path, native_runner: bool) -> list[Any]:
    """Each case of the example's suite, run as the edge runs it (no
    trace): what the client got, the forwarded head and the events, and
    what `policy test` would say of it."""
    loaded = load_cases(policy_file, policy_file.with_suffix(".cases.yml"))
    policy = loaded.policy
    if not native_runner:
        policy._request = dataclasses.replace(policy._request, runner=None)
        policy._response = dataclasses.replace(policy._response, runner=None)
    seen = []
    for case in loaded.cases:
        out = run_case(policy, case, loaded.clock, loaded.sink.events, trace=False)
        forwarded = out.forwarded
        seen.append(
            (
                out.closed,
                out.status,
                out.headers,
                re.sub(rb"req-test-\d+", b"req-test-N", out.body),  # a process-wide count
                out.error_code,
                None if forwarded is None else dataclasses.astuple(forwarded),
                out.forwarded_body,
                [(e.rule, e.action, e.verdict, e.reason, e.status) for e in out.events],
                [f for f in check(case, out) if "rules" not in f],
            )
        )
    return seen


@pytest.mark.parametrize(
    "policy_file",
    sorted(p for p in EXAMPLES.glob("*.yml") if not p.name.endswith(".cases.yml")),
    ids=lambda p: p.stem,
)
def test_the_example_suites_run_alike_on_both(policy_file: Path) -> None:
    native_run = _replayed(policy_file, True)
    assert native_run == _replayed(policy_file, False)
    # and they pass (the `rules` expectations need a trace: test_cli checks them)
    assert all(not failures for *_, failures in native_run), native_run


# --- what the runner performs itself -------------------------------------------------


def _run(
    doc: dict[str, Any],
    requests: int,
    response: bool = False,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> list[Any]:
    """`(rule, step, answer)` of the runner on each of `requests` requests
    (the response phase's when `response`; `headers` are the request's,
    and the response's too)."""
    policy, _ = compiled(doc, True)
    out = []
    for _ in range(requests):
        conn = ConnectionInfo("c1", "public", "192.0.2.10", 50123, "127.0.0.1", 443, NOW - 1)
        head = RequestHead(b"GET", b"/a?b", b"app.example.com", b"https", headers or [], b"1.1")
        ex = policy.begin(conn, ENDPOINT, head, "req-1")
        ex.received = head
        if response:
            runner = policy._response.runner
            assert runner is not None
            _, stop, answer = run_response(
                runner,
                ex,
                ResponseHead(200, list(headers or [])),
                conn_fields=policy.conn_fields,
                roots=policy._response.roots,
                phase=policy._response.phase,
                rules=policy._response.rules,
            )
        else:
            runner = policy._request.runner
            assert runner is not None
            _, stop, answer, _ = run_request(
                runner, ex, head, policy.conn_fields, policy._request.rules
            )
        out.append((stop, answer))
    return out


def test_the_runner_checks_the_rate_limit_and_answers_a_refusal() -> None:
    config = {"name": "t", "algorithm": "sliding_window", "capacity": 2, "rate": "60s"}
    keys = ["conn.client_ip", "req.url.path"]
    doc = {
        "on_http_request": [
            {"actions": [{"type": "rate-limit", "config": {**config, "bucket_key": keys}}]}
        ]
    }
    first, second, third = _run(doc, 3)
    assert first == second == (None, None)  # counted, the phase done natively
    (stop, wait) = third
    reference = MemoryStore()
    for _ in range(3):
        refused = reference.hit("k", capacity=2, window=60.0, now=NOW)
    assert stop == (0, 0) and wait == refused.retry_after == 70.0  # 40 s, then half a window
    # enforce: false: counted, never an answer
    config["enforce"] = False  # type: ignore[assignment]
    doc = {
        "on_http_request": [
            {"actions": [{"type": "rate-limit", "config": {**config, "bucket_key": keys}}]}
        ]
    }
    assert _run(doc, 3) == [(None, None)] * 3
    # a key that is not a string: the engine makes its JSON
    doc = {
        "on_http_request": [
            {
                "actions": [
                    {
                        "type": "rate-limit",
                        "config": {**config, "bucket_key": ["size(req.headers)"]},
                    }
                ]
            }
        ]
    }
    assert _run(doc, 1) == [((0, 0), None)]


def test_the_runner_answers_deny_and_custom_response() -> None:
    deny = {"on_http_request": [{"actions": [{"type": "deny", "config": {"status_code": 451}}]}]}
    assert _run(deny, 1) == [((0, 0), ())]
    body = "${req.method} ${req.url.path}"
    respond = {
        "type": "custom-response",
        "config": {
            "status_code": 418,
            "body": body,
            "headers": {"x-r": "${req.url.query}", "x-c": "c"},
        },
    }
    doc = {"on_http_request": [{"actions": [respond]}]}
    assert _run(doc, 1) == [((0, 0), ("GET /a", [(b"x-r", b"b"), (b"x-c", b"c")]))]
    doc = {
        "on_http_request": [{"actions": [{"type": "deny"}]}],
        "on_http_response": [{"actions": [respond]}],
    }
    assert _run(doc, 1, response=True) == [((0, 0), ("GET /a", [(b"x-r", b"b"), (b"x-c", b"c")]))]
    # a value the engine refuses (CR/LF/NUL) or fails to render: the engine runs the step
    respond["config"]["headers"] = {"x-r": "${req.headers['x'][0]}"}  # type: ignore[index]
    assert _run({"on_http_request": [{"actions": [respond]}]}, 1) == [((0, 0), None)]


def test_the_runner_reads_header_maps_as_the_engine() -> None:
    """`req.headers` and `res.headers` are read from the fields as programs
    ask (a lazy map in the runner): a test of a name, one name's values
    with the name repeated, the size, the names in order and the whole map
    come out as the engine's, answered by the runner itself."""
    template = (
        "${'x-a' in {m}} ${'x-c' in {m}} ${{m}['x-a']} ${size({m})}"
        " ${{m}.map(n, n)} ${{m}.exists(n, n == 'x-b')} ${{m}}"
    )
    fields = [(b"x-a", b"1"), (b"x-b", b"2"), (b"x-a", b"3")]
    expected = "true false [1, 3] 2 [x-a, x-b] true {x-a: [1, 3], x-b: [2]}"

    def respond(root: str) -> dict[str, Any]:
        body = template.replace("{m}", f"{root}.headers")
        return {"type": "custom-response", "config": {"status_code": 200, "body": body}}

    request = {"on_http_request": [{"actions": [respond("req")]}]}
    response = {"on_http_response": [{"actions": [respond("res")]}]}
    assert _run(request, 1, headers=fields) == [((0, 0), (expected, []))]
    assert _run(response, 1, response=True, headers=fields) == [((0, 0), (expected, []))]
    x = {
        "method": b"GET",
        "target": b"/",
        "authority": b"app.example.com",
        "headers": fields,
        "version": b"1.1",
        "client_ip": "192.0.2.10",
        "status": 200,
        "res_headers": fields,
    }
    for doc in (request, response):
        assert_same_on_both(doc, [x])


def test_the_runner_answers_redirect() -> None:
    def doc(**config: Any) -> dict[str, Any]:
        return {"on_http_request": [{"actions": [{"type": "redirect", "config": config}]}]}

    to = "https://other.example/$1?w=${req.method + ' x'}"
    answer = (
        "https://other.example/a?w=GET%20x",
        [(b"x-r", b"b")],
    )
    headers = {"x-r": "${req.url.query}"}
    assert _run(doc(**{"from": "^.*/(a)[?]b$", "to": to, "headers": headers}), 1) == [
        ((0, 0), answer)
    ]
    # no match, or the same URL: the rule goes on, the phase done natively
    assert _run(doc(**{"from": "/(zzz)", "to": to}), 1) == [(None, None)]
    assert _run(doc(to="https://app.example.com/a?b"), 1) == [(None, None)]
    # an interpolated `from`, a header that fails: the engine runs the step
    assert _run(doc(**{"from": "${req.method}", "to": to}), 1) == [((0, 0), None)]
    failing = {"x-r": "${req.headers['x'][0]}"}
    assert _run(doc(to="https://x.example/", headers=failing), 1) == [((0, 0), None)]


def test_the_runner_sets_vars() -> None:
    set_vars = {
        "type": "set-vars",
        "config": {"vars": [{"v": "${req.method}"}, {"w": ["${vars.v}-x", {"p": 1}]}]},
    }
    doc = {
        "on_http_request": [
            {"actions": [set_vars]},
            {"expressions": ["vars.w[0] == 'GET-x'"], "actions": [{"type": "deny"}]},
        ]
    }
    assert _run(doc, 1) == [((1, 0), ())]  # set, read, denied natively
    # an entry that fails after one was set: `vars` as they were, the engine's step
    set_vars["config"]["vars"].append({"x": "${req.headers['x'][0]}"})  # type: ignore[index]
    doc["on_http_request"][1]["expressions"] = ["true"]
    _, stop, answer, vars = request_once(compiled(doc, True)[0])
    assert (stop, answer, vars) == ((0, 0), None, None)


def test_the_runner_rewrites_the_url() -> None:
    def forwarded(*configs: dict[str, Any]) -> tuple[Any, ...]:
        actions = [{"type": "url-rewrite", "config": c} for c in configs]
        policy, _ = compiled({"on_http_request": [{"actions": actions}]}, True)
        forward, stop, answer, _ = request_once(policy)
        return forward.target, forward.authority, stop, answer

    # one rewrite after another, on the URL forwarded so far
    first = {"from": "^https://[^/]+(/.*)$", "to": "http://up.example:8080/v2$1"}
    second = {"from": "/v2", "to": "/v3/${req.method + ' x'}"}
    assert forwarded(first, second) == (b"/v3/GET%20x/a?b", b"up.example:8080", None, None)
    assert forwarded({"from": "nomatch", "to": "https://x/"}) == (
        b"/a?b",
        b"app.example.com",
        None,
        None,
    )
    # a URL the action refuses: the engine runs the step (and answers 500)
    refused = forwarded(first, {"to": "ftp://x/"})
    assert refused == (b"/v2/a?b", b"up.example:8080", (0, 1), None)


def test_the_runner_checks_basic_auth() -> None:
    def run(credential: bytes | None, **config: Any) -> Any:
        config.setdefault("credentials", ["alice:password1", "bob:pa:ss:word"])
        doc = {"on_http_request": [{"actions": [{"type": "basic-auth", "config": config}]}]}
        headers = [] if credential is None else [(b"authorization", credential)]
        [outcome] = _run(doc, 1, headers=headers)
        return outcome

    assert run(_basic(b"bob:pa:ss:word")) == (None, None)  # the phase done natively
    assert run(_basic(b"bob:pa:ss")) == ((0, 0), (True, b"bob"))  # refused natively
    assert run(_basic(b"bob")) == ((0, 0), (True, None))  # malformed
    assert run(b"Bearer x") == run(None) == ((0, 0), (False, None))  # absent
    assert run(None, enforce=False) == (None, None)
    # what only Python's base64 decoder decides, credentials rendered per
    # request: the engine runs the step
    assert run(b"Basic Ym9iOnBhOnNzOndvcmQ") == ((0, 0), None)
    assert run(_basic(b"GET:password1"), credentials=["${req.method}:password1"]) == (
        (0, 0),
        None,
    )
    # and the engine answers from the runner's refusal as from its own
    doc = {
        "on_http_request": [
            {
                "actions": [
                    {
                        "type": "basic-auth",
                        "config": {"credentials": ["alice:password1"], "realm": "staff"},
                    }
                ]
            }
        ]
    }
    x = {
        "method": b"GET",
        "target": b"/",
        "authority": b"h",
        "version": b"1.1",
        "headers": [(b"authorization", _basic(b"\xe9:password1"))],
        "client_ip": "192.0.2.1",
        "status": 200,
        "res_headers": [],
    }
    with_runner, sink = compiled(doc, True)
    answer, events = drive(with_runner, sink, x)
    assert answer[:2] == ("answer", 401)
    assert (b"www-authenticate", b'Basic realm="staff", charset="UTF-8"') in answer[2]
    assert "credentials rejected for user '\ufffd'" in events[0][6]
    reference, sink = compiled(doc, False)
    assert drive(reference, sink, x) == [answer, events]


def test_the_runner_logs_events_as_data() -> None:
    """The runner evaluates the metadata; Python emits the events when it
    returns, before those of the steps the engine runs after it."""
    log = {"type": "log", "config": {"metadata": {"m": "${req.method}", "l": ["${vars.v}"]}}}
    set_v = {"type": "set-vars", "config": {"vars": [{"v": "${req.url.path}"}]}}
    dynamic = {"type": "basic-auth", "config": {"credentials": ["${req.method}:password1"]}}
    doc = {
        "on_http_request": [
            {"actions": [set_v, log]},
            {"actions": [log, dynamic, log]},  # the runner stops at the basic-auth
        ],
        "on_http_response": [{"actions": [log]}],
    }
    with_runner, sink = compiled(doc, True)
    _, stop, answer, _ = request_once(with_runner)
    assert (stop, answer) == ((1, 1), None)
    assert [(e.rule, e.action, e.metadata) for e in sink.events] == [
        ("on_http_request[0]", "log", {"m": "GET", "l": ["/a"]}),
        ("on_http_request[1]", "log", {"m": "GET", "l": ["/a"]}),
    ]
    sink.events.clear()
    x = {
        "method": b"GET",
        "target": b"/a?b",
        "authority": b"h",
        "version": b"1.1",
        "headers": [(b"authorization", _basic(b"GET:password1"))],
        "client_ip": "192.0.2.1",
        "status": 200,
        "res_headers": [],
    }
    seen = drive(with_runner, sink, x)
    rules = ["on_http_request[0]", "on_http_request[1]", "on_http_request[1]"]
    assert [(e[2], e[3], e[4]) for e in seen[-1]] == [
        *(("on_http_request", rule, "log") for rule in rules),
        ("on_http_response", "on_http_response[0]", "log"),
    ]
    reference, sink = compiled(doc, False)
    assert drive(reference, sink, x) == seen


class _Unreadable(Mapping[str, str]):
    """Endpoint metadata whose store fails when read: a failure of the
    host (a variable the engine's builders make) in the middle of a phase."""

    def __getitem__(self, key: str) -> str:
        raise RuntimeError("metadata store unavailable")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("metadata store unavailable")

    def __len__(self) -> int:
        raise RuntimeError("metadata store unavailable")


def test_a_failure_of_the_host_raises_with_the_same_events_on_both() -> None:
    """A variable the host builds fails (the endpoint's metadata): both
    backends raise it, with the same events emitted. The engine builds a
    phase's roots before its first rule, so the log step before the rule
    that reads `endpoint` never runs there; the runner reads `endpoint`
    only at that rule, after the log step, and must not emit what it
    logged (the events it returns as data go with its result)."""
    log = {"type": "log", "config": {"metadata": {"m": "${req.method}"}}}
    doc = {
        "on_http_request": [
            {"actions": [log]},
            {"expressions": ["size(endpoint.metadata) > 0"], "actions": [{"type": "deny"}]},
        ]
    }
    endpoint = dataclasses.replace(ENDPOINT, metadata=_Unreadable())
    seen = []
    for native_runner in (True, False):
        policy, sink = compiled(doc, native_runner)
        assert (policy._request.runner is not None) is native_runner
        conn = ConnectionInfo("c1", "public", "192.0.2.10", 50123, "127.0.0.1", 443, NOW - 1)
        head = RequestHead(b"GET", b"/a", b"app.example.com", b"https", [], b"1.1")
        exchange = policy.begin(conn, endpoint, head, "req-1")
        with pytest.raises(RuntimeError, match="metadata store unavailable"):
            exchange.on_http_request(head)
        seen.append([(e.rule, e.action, e.metadata) for e in sink.events])
    assert seen[0] == seen[1] == []
