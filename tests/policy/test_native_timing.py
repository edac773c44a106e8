"""The native phase runner's timing mode (`PhaseRunner(..., timed=True)`,
which `edgeward bench policy` reads): what it counts per rule and step, and
that a timed runner decides exactly as the runner the edge uses."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeward import native
from edgeward.hooks import ConnectionInfo, RequestHead
from edgeward.policy import CompiledPolicy
from edgeward.policy.native_phase import run_request, runner

from .helpers import ENDPOINT, NOW
from .test_native_phase import compiled, drive, exchange, policy

pytestmark = pytest.mark.skipif(
    native.PhaseRunner is None, reason="the native module is not loaded (the engine runs alone)"
)


def timed(policy: CompiledPolicy) -> CompiledPolicy:
    """`policy` with each HTTP phase it runs natively in a runner in timing
    mode, as `edgeward bench policy`'s copy (rules unchanged here)."""
    return policy.map_rules(lambda rule: rule, partial(runner, timed=True))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy(), st.lists(exchange(), min_size=1, max_size=3))
def test_timing_mode_decides_as_the_runner(
    doc: dict[str, Any], exchanges: list[dict[str, Any]]
) -> None:
    plain, sink1 = compiled(doc, True)
    reference, sink2 = compiled(doc, True)
    clocked = timed(reference)  # shares reference's sink
    assert plain._request.runner is not None
    clocked_runner = clocked._request.runner
    assert clocked_runner is not None and clocked_runner.timings() is not None
    for x in exchanges:
        assert drive(clocked, sink2, x) == drive(plain, sink1, x)
        sink1.events.clear()
        sink2.events.clear()


def add(name: str) -> dict[str, Any]:
    return {"type": "add-headers", "config": {"headers": {name: "1"}}}


def test_timing_mode_counts_rules_and_steps_the_runner_performs() -> None:
    doc = {
        "on_http_request": [
            {"expressions": ["req.method == 'GET'"], "actions": [add("x-a"), add("x-b")]},
            {"expressions": ["req.method == 'POST'"], "actions": [add("x-c")]},
            {"actions": [{"type": "deny"}]},
            {"expressions": ["req.method == 'GET'"], "actions": [add("x-d")]},
        ]
    }
    policy, _ = compiled(doc, True)
    policy = timed(policy)
    assert _run_timed(policy, 3) == [((2, 0), ())] * 3  # the runner answers the deny
    found = policy._request.runner
    assert found is not None
    timings = found.timings()
    assert timings is not None
    calls = [(e[1], [s[1] for s in steps]) for e, steps in timings]
    # each test of a rule (one without expressions too) and each step run is a call;
    # the rule after the deny is never reached
    assert calls == [(3, [3, 3]), (3, [0]), (3, [3]), (0, [0])]
    ns = [(e[0], [s[0] for s in steps]) for e, steps in timings]
    assert all(t > 0 for t in (ns[0][0], *ns[0][1], ns[1][0], ns[2][1][0]))
    assert ns[1][1] == [0] and ns[3] == (0, [0])
    found.reset_timings()
    assert found.timings() == [((0, 0), [(0, 0)] * len(steps)) for _, steps in timings]


def test_a_step_left_to_the_engine_is_timed_not_counted() -> None:
    limit = {
        "name": "t",
        "algorithm": "sliding_window",
        "capacity": 5,
        "rate": "60s",
        "bucket_key": ["size(req.headers)"],  # not a string: the engine makes the key
    }
    doc = {"on_http_request": [{"actions": [{"type": "rate-limit", "config": limit}]}]}
    policy, _ = compiled(doc, True)
    policy = timed(policy)
    assert _run_timed(policy, 2) == [((0, 0), None)] * 2  # the engine resumes at the step
    found = policy._request.runner
    assert found is not None
    timings = found.timings()
    assert timings is not None
    [((_, tests), [(step_ns, step_calls)])] = timings
    assert tests == 2 and step_calls == 0 and step_ns > 0


def test_untimed_runners_have_no_timings() -> None:
    policy, _ = compiled({"on_http_request": [{"actions": [{"type": "deny"}]}]}, True)
    found = policy._request.runner
    assert found is not None
    assert found.timings() is None
    found.reset_timings()  # nothing to reset
    assert "timed" not in repr(found) and "timed" in repr(timed(policy)._request.runner)


def _run_timed(policy: CompiledPolicy, requests: int) -> list[Any]:
    """`(stop, answer)` of the policy's request runner on plain GETs."""
    found = policy._request.runner
    assert found is not None
    out = []
    for _ in range(requests):
        conn = ConnectionInfo("c1", "public", "192.0.2.10", 50123, "127.0.0.1", 443, NOW - 1)
        head = RequestHead(b"GET", b"/a?b", b"app.example.com", b"https", [], b"1.1")
        ex = policy.begin(conn, ENDPOINT, head, "req-1")
        _, stop, answer, _ = run_request(found, ex, head, policy.conn_fields, policy._request.rules)
        out.append((stop, answer))
    return out
