"""`edgeward bench policy`: what a compiled policy costs per request, per
phase, and per rule and action.

The requests are the cases of a cases file (the format of `edgeward policy
test`, run by the same `policy.cases.run_case` without tracing, as the edge
runs), or `generated()` ones. Two passes, both on the backend of this
process (`edgeward.native.BACKEND`; `measure_backends` runs one child
process per backend):

- the real path: each phase hook is timed as the edge runs it (a run of
  traffic-only rules tested by one program); what an effect waits for
  (a body read, a fetch) is not counted, an `Offload` (work the edge runs in
  a thread) is. This gives µs per request and per phase.
- the instrumented path: a copy of the policy (`CompiledPolicy.map_rules`)
  whose rules' expressions and actions are wrapped in timers, each rule
  tested on its own. This gives each rule's and action's share; the rest
  (activations, the rule loop, outcomes, the timers' own calls) is the
  "engine" row, so the shares add up to 100%.

On the rust backend the edge runs an HTTP phase in one call of the native
phase runner (`policy.native_phase`), so the copy does too, with its runners
in timing mode: each rule's expressions and each step the runner performs
are timed inside it (`PhaseRunner.timings`). Where the runner stops (a
`("python",)` step, a failure it leaves to the engine), the engine resumes
on the copy's rules, whose Python timers time what it runs; the two add up
in the same rows. So the table shows what the edge pays, not what the
Python engine would (a policy the runner does not take, one reading
`actions.*`, is timed in Python on both backends, as the edge runs it).
"""

from __future__ import annotations

import copy
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar, cast

from edgeward import native
from edgeward.document import load_document, parse_document
from edgeward.errors import ConfigError
from edgeward.hooks import (
    BodyFilter,
    ConnectionInfo,
    Effect,
    EffectResult,
    EndpointInfo,
    ExchangeSummary,
    Forward,
    ForwardInternal,
    Hooked,
    Offload,
    PassResponse,
    RequestHead,
    RequestOutcome,
    ResponseHead,
    ResponseOutcome,
    needs_io,
)
from edgeward.policy import compile_policy
from edgeward.policy.actions.base import Action, ActionContext, Decision
from edgeward.policy.cases import DEFAULT_CLIENT_IP, Case, CaseClock, read_cases, run_case
from edgeward.policy.engine import CompiledPolicy, PolicyExchange
from edgeward.policy.events import ListSink
from edgeward.policy.loader import Rule, Step
from edgeward.policy.model import Phase
from edgeward.policy.native_phase import runner as native_runner
from edgeward.secrets import load_secrets

T = TypeVar("T")
BACKENDS: tuple[native.Backend, ...] = ("rust", "python")
ENGINE = "(engine: activations, rule loop, outcomes)"


# --- what to replay -------------------------------------------------------------------

GENERATED = """
cases:
  - request:
      url: https://app.example.com/
      headers: {user-agent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
                accept: text/html, cookie: "session=abc123; theme=dark"}
    response: {headers: {content-type: text/html}, body: "<html>hello</html>"}
  - request:
      url: https://app.example.com/api/v1/items?page=2&sort=name
      headers: {authorization: "Bearer eyJhbGciOi.e30.sig", accept: application/json,
                user-agent: "python-requests/2.32"}
      client_ip: 198.51.100.7
    response: {headers: {content-type: application/json}, body: '{"items": []}'}
  - request:
      method: POST
      url: https://app.example.com/api/v1/orders
      headers: {content-type: application/json, user-agent: "billing-cron/1.2"}
      body: '{"sku": "A1", "quantity": 2}'
      client_ip: 203.0.113.9
    response: {status: 201, headers: {content-type: application/json}, body: '{"id": 7}'}
  - request:
      url: https://app.example.com/static/app.js
      headers: {accept: "*/*", accept-encoding: "gzip, br"}
    response: {headers: {content-type: text/javascript}, body: "console.log(1)"}
  - request:
      url: https://app.example.com/admin/users
      headers: {user-agent: "sqlmap/1.8"}
      client_ip: 10.1.2.3
    response: {status: 404}
  - request:
      method: DELETE
      url: https://app.example.com/api/v1/items/7
      headers: {authorization: "Basic dXNlcjpwYXNz"}
      client_ip: 2001:db8::1
    response: {status: 204}
"""


def generated(client_ip: str = DEFAULT_CLIENT_IP) -> list[Case]:
    """A mix of requests (a page, API reads and writes, a static file, a
    probe) for a policy that comes without cases."""
    cases, _ = read_cases(parse_document(GENERATED, "<generated requests>"), client_ip=client_ip)
    return cases


# --- timers -----------------------------------------------------------------------------


@dataclass(slots=True)
class Timer:
    """Nanoseconds spent and calls made, since the last `reset`; `wrapped`:
    the calls timed by a Python wrapper, whose own cost is taken off."""

    ns: int = 0
    calls: int = 0
    wrapped: int = 0

    def reset(self) -> None:
        self.ns = self.calls = self.wrapped = 0


def _timed_generator(
    gen: Generator[Effect, EffectResult, T], timer: Timer
) -> Generator[Effect, EffectResult, T]:
    """`gen`, timed while it runs and while an `Offload` (edge work in a
    thread) is performed; not while any other effect waits for I/O."""
    start = time.perf_counter_ns()
    counting = True
    try:
        effect = gen.send(None)
        while True:
            if not isinstance(effect, Offload):
                timer.ns += time.perf_counter_ns() - start
                counting = False
            result = yield effect
            if not counting:
                start, counting = time.perf_counter_ns(), True
            effect = gen.send(result)
    except StopIteration as stop:
        return cast(T, stop.value)
    finally:
        if counting:
            timer.ns += time.perf_counter_ns() - start


class _TimedFilter:
    """A body filter timed into its phase (find-replace, compression, SSE)."""

    __slots__ = ("inner", "timer")

    def __init__(self, inner: BodyFilter, timer: Timer) -> None:
        self.inner = inner
        self.timer = timer

    def feed(self, data: bytes) -> bytes:
        start = time.perf_counter_ns()
        try:
            return self.inner.feed(data)
        finally:
            self.timer.ns += time.perf_counter_ns() - start

    def finish(self) -> bytes:
        start = time.perf_counter_ns()
        try:
            return self.inner.finish()
        finally:
            self.timer.ns += time.perf_counter_ns() - start


class _PhaseTimedPolicy:
    """Stands in for the `CompiledPolicy` `run_case` drives: times each phase
    hook (and the body filters it returns) into `phases`."""

    def __init__(self, policy: CompiledPolicy) -> None:
        self.policy = policy
        self.phases = {phase: Timer() for phase in Phase}

    def connect(self, conn: ConnectionInfo, endpoint: EndpointInfo | None, trace: Any) -> Any:
        timer = self.phases[Phase.TCP_CONNECT]
        start = time.perf_counter_ns()
        try:
            return self.policy.connect(conn, endpoint, trace)
        finally:
            timer.ns += time.perf_counter_ns() - start

    def begin(
        self, conn: ConnectionInfo, endpoint: EndpointInfo, head: RequestHead, request_id: str
    ) -> _PhaseTimedExchange:
        timer = self.phases[Phase.HTTP_REQUEST]
        start = time.perf_counter_ns()
        exchange = self.policy.begin(conn, endpoint, head, request_id)
        timer.ns += time.perf_counter_ns() - start
        return _PhaseTimedExchange(exchange, self.phases)


class _PhaseTimedExchange:
    __slots__ = ("exchange", "phases")

    def __init__(self, exchange: PolicyExchange, phases: Mapping[Phase, Timer]) -> None:
        self.exchange = exchange
        self.phases = phases

    def on_http_request(self, head: RequestHead) -> Hooked[RequestOutcome]:
        timer = self.phases[Phase.HTTP_REQUEST]
        timer.calls += 1
        start = time.perf_counter_ns()
        hooked = self.exchange.on_http_request(head)
        timer.ns += time.perf_counter_ns() - start
        if needs_io(hooked):
            return self._request_filter(_timed_generator(hooked, timer), timer)
        return _request_filter(hooked, timer)

    def _request_filter(
        self, gen: Generator[Effect, EffectResult, RequestOutcome], timer: Timer
    ) -> Generator[Effect, EffectResult, RequestOutcome]:
        return _request_filter((yield from gen), timer)

    def on_http_response(self, head: ResponseHead) -> Hooked[ResponseOutcome]:
        timer = self.phases[Phase.HTTP_RESPONSE]
        timer.calls += 1
        start = time.perf_counter_ns()
        hooked = self.exchange.on_http_response(head)
        timer.ns += time.perf_counter_ns() - start
        if needs_io(hooked):
            return self._response_filter(_timed_generator(hooked, timer), timer)
        return _response_filter(hooked, timer)

    def _response_filter(
        self, gen: Generator[Effect, EffectResult, ResponseOutcome], timer: Timer
    ) -> Generator[Effect, EffectResult, ResponseOutcome]:
        return _response_filter((yield from gen), timer)

    def on_complete(self, summary: ExchangeSummary) -> None:
        self.exchange.on_complete(summary)  # (the circuit breaker counts it; not a phase)


def _request_filter(outcome: RequestOutcome, timer: Timer) -> RequestOutcome:
    if isinstance(outcome, Forward | ForwardInternal) and outcome.body_filter is not None:
        outcome.body_filter = _TimedFilter(outcome.body_filter, timer)
    return outcome


def _response_filter(outcome: ResponseOutcome, timer: Timer) -> ResponseOutcome:
    if isinstance(outcome, PassResponse) and outcome.body_filter is not None:
        outcome.body_filter = _TimedFilter(outcome.body_filter, timer)
    return outcome


class _TimedProgram:
    """A rule's condition, timed (`Rule.condition` is a `native.Program`)."""

    __slots__ = ("program", "timer")

    def __init__(self, program: native.Program, timer: Timer) -> None:
        self.program = program
        self.timer = timer

    def evaluate(self, activation: Mapping[str, Any]) -> Any:
        self.timer.calls += 1
        self.timer.wrapped += 1
        start = time.perf_counter_ns()
        try:
            return self.program.evaluate(activation)
        finally:
            self.timer.ns += time.perf_counter_ns() - start


def _timed_action(action: Action, timer: Timer) -> Action:
    """A copy of `action` whose `apply`, and `run` while it is not waiting
    for I/O, are timed. A copy, not a wrapper: it stays an instance of its
    class, which the engine relies on to build the decision of a step the
    native runner performed (`native_phase.native_decision`)."""

    def apply(ctx: ActionContext) -> Decision | None:
        timer.calls += 1
        timer.wrapped += 1
        start = time.perf_counter_ns()
        try:
            return action.apply(ctx)
        finally:
            timer.ns += time.perf_counter_ns() - start

    def run(ctx: ActionContext) -> Generator[Effect, EffectResult, Decision | None]:
        timer.calls += 1
        timer.wrapped += 1
        return _timed_generator(action.run(ctx), timer)

    timed = copy.copy(action)
    vars(timed).update(apply=apply, run=run)  # shadow the class's methods
    return timed


@dataclass(slots=True)
class _RuleTimers:
    rule: Rule
    expressions: Timer | None
    actions: list[tuple[Step, Timer]] = field(default_factory=list)


@dataclass(slots=True)
class Instrumented:
    """A timed copy of a policy (`instrument`): its rules' timers, and its
    native runners in timing mode with the rules each runs."""

    policy: CompiledPolicy
    rules: list[_RuleTimers]
    runners: list[tuple[tuple[Rule, ...], native.PhaseRunnerType]]

    def reset(self) -> None:
        for found in self.rules:
            for timer in _timers(found):
                timer.reset()
        for _, runner in self.runners:
            runner.reset_timings()

    def collect(self) -> None:
        """Add what the runners timed since the last call to the rules'
        timers (calls not `wrapped`: no Python timer's cost to take off)."""
        by_rule = {(found.rule.phase, found.rule.index): found for found in self.rules}
        for rules, runner in self.runners:
            for rule, ((ns, calls), steps) in zip(rules, runner.timings() or (), strict=True):
                found = by_rule[(rule.phase, rule.index)]
                if found.expressions is not None:
                    found.expressions.ns += ns
                    found.expressions.calls += calls
                for (_, timer), (step_ns, step_calls) in zip(found.actions, steps, strict=True):
                    timer.ns += step_ns
                    timer.calls += step_calls
            runner.reset_timings()


def instrument(policy: CompiledPolicy) -> Instrumented:
    """A copy of `policy` with a timer on each rule's expressions and on
    each action, rules tested one by one (no chained program); a phase the
    policy runs in the native runner runs in one in timing mode."""
    timers: dict[tuple[Phase, int], _RuleTimers] = {}
    runners: list[tuple[tuple[Rule, ...], native.PhaseRunnerType]] = []

    def wrap(rule: Rule) -> Rule:
        key = (rule.phase, rule.index)
        if key not in timers:
            timers[key] = _RuleTimers(
                rule,
                None if rule.condition is None else Timer(),
                [(s, Timer()) for s in rule.steps],
            )
        found = timers[key]
        condition = rule.condition
        if condition is not None and found.expressions is not None:
            condition = cast(native.Program, _TimedProgram(condition, found.expressions))
        steps = tuple(
            replace(step, action=_timed_action(step.action, timer)) for step, timer in found.actions
        )
        return replace(rule, condition=condition, steps=steps, chain=None, chain_end=0)

    def timed_runner(rules: tuple[Rule, ...]) -> native.PhaseRunnerType | None:
        found = native_runner(rules, timed=True)
        if found is not None:
            runners.append((rules, found))
        return found

    twin = policy.map_rules(wrap, timed_runner)
    return Instrumented(twin, list(timers.values()), runners)


# --- measuring --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Loaded:
    """A compiled policy and the requests to replay through it."""

    policy: CompiledPolicy
    cases: list[Case]
    clock: CaseClock
    sink: ListSink
    generated: bool


def load(
    policy_file: Path,
    cases_file: Path | None = None,
    *,
    client_ip: str = DEFAULT_CLIENT_IP,
    secrets_file: Path | None = None,
) -> Loaded:
    """Compile the policy as `edgeward policy test` does; `ConfigError`
    (a `PolicyError` too) when a file is wrong."""
    if cases_file is not None:
        cases, ip_policies = read_cases(
            load_document(cases_file, what="cases file"), client_ip=client_ip
        )
    else:
        cases, ip_policies = generated(client_ip), {}
    if not cases:
        raise ConfigError("the cases file has no cases to replay", None)
    clock = CaseClock()
    sink = ListSink()
    policy = compile_policy(
        load_document(policy_file, what="policy file"),
        ip_policies=ip_policies,
        events=sink,
        clock=clock,
        secrets=None if secrets_file is None else load_secrets(secrets_file),
    )
    return Loaded(policy, cases, clock, sink, cases_file is None)


def _replay(loaded: Loaded, policy: Any, rounds: int) -> None:
    for _ in range(rounds):
        for case in loaded.cases:
            run_case(policy, case, loaded.clock, loaded.sink.events, trace=False)
        loaded.sink.events.clear()


def _calibrate(samples: int = 20_000) -> float:
    """The ns a timer adds inside what it measures (a wrapped no-op)."""

    class Noop:
        def evaluate(self, activation: Mapping[str, Any]) -> bool:
            return False

    timer = Timer()
    program = _TimedProgram(cast(native.Program, Noop()), timer)
    bare = Noop()
    activation: dict[str, Any] = {}
    start = time.perf_counter_ns()
    for _ in range(samples):
        bare.evaluate(activation)
    bare_ns = (time.perf_counter_ns() - start) / samples
    timer.reset()
    for _ in range(samples):
        program.evaluate(activation)
    return max(0.0, timer.ns / samples - bare_ns)


def measure(loaded: Loaded, *, requests: int = 2000, repeat: int = 5) -> dict[str, Any]:
    """Both passes on this process's backend, as plain data (`--json`)."""
    return {**phase_costs(loaded, requests, repeat), **rule_costs(loaded, requests, repeat)}


def _rounds(loaded: Loaded, requests: int) -> tuple[int, int]:
    """Rounds over the cases for at least `requests`, and the requests."""
    rounds = max(1, -(-requests // len(loaded.cases)))
    return rounds, rounds * len(loaded.cases)


def phase_costs(loaded: Loaded, requests: int = 2000, repeat: int = 5) -> dict[str, Any]:
    """The real path: median µs per request over `repeat` runs, and per
    phase (`on_event_stream_message` runs in the response body: it counts
    in `on_http_response`)."""
    rounds, count = _rounds(loaded, requests)
    timed = _PhaseTimedPolicy(loaded.policy)
    _replay(loaded, timed, 1)  # warm: caches, buckets, JWKS
    shown = [Phase.HTTP_REQUEST, Phase.HTTP_RESPONSE]
    if loaded.policy.rules.get(Phase.TCP_CONNECT):  # else the call returns at once
        shown.insert(0, Phase.TCP_CONNECT)
    totals: list[float] = []
    by_phase: dict[Phase, list[float]] = {phase: [] for phase in Phase}
    for _ in range(repeat):
        for timer in timed.phases.values():
            timer.reset()
        _replay(loaded, timed, rounds)
        for phase, timer in timed.phases.items():
            by_phase[phase].append(timer.ns / count)
        totals.append(sum(timed.phases[phase].ns for phase in shown) / count)
    return {
        "backend": native.BACKEND,
        "requests": count,
        "cases": len(loaded.cases),
        "us_per_request": statistics.median(totals) / 1000,
        "phases": {phase.value: statistics.median(by_phase[phase]) / 1000 for phase in shown},
    }


def rule_costs(loaded: Loaded, requests: int = 2000, repeat: int = 5) -> dict[str, Any]:
    """The instrumented path: each rule's and action's µs per request and
    share, from the run with the median total of `repeat` runs."""
    rounds, count = _rounds(loaded, requests)
    twin = instrument(loaded.policy)
    rules = twin.rules
    timed_twin = _PhaseTimedPolicy(twin.policy)
    _replay(loaded, timed_twin, 1)
    overhead = _calibrate()
    samples: list[tuple[float, list[_Counts]]] = []
    for _ in range(repeat):
        for timer in timed_twin.phases.values():
            timer.reset()
        twin.reset()
        _replay(loaded, timed_twin, rounds)
        twin.collect()
        total = sum(t.ns for t in timed_twin.phases.values()) / count
        samples.append(
            (
                total,
                [
                    (
                        _counts(found.expressions or Timer()),
                        [_counts(t) for _, t in found.actions],
                    )
                    for found in rules
                ],
            )
        )
    total, snapshot = sorted(samples, key=lambda s: s[0])[len(samples) // 2]
    return {
        **_breakdown(rules, snapshot, total, count, overhead),
        "native_runner": bool(twin.runners),
    }


# (ns, calls, wrapped) of a timer; of a rule: its expressions' and each action's
_Count = tuple[int, int, int]
_Counts = tuple[_Count, list[_Count]]


def _counts(timer: Timer) -> _Count:
    return timer.ns, timer.calls, timer.wrapped


def _timers(found: _RuleTimers) -> Iterable[Timer]:
    if found.expressions is not None:
        yield found.expressions
    for _, timer in found.actions:
        yield timer


def _breakdown(
    rules: Sequence[_RuleTimers],
    snapshot: Sequence[_Counts],
    total_ns: float,
    count: int,
    overhead_ns: float,
) -> dict[str, Any]:
    """Each rule's and action's cost per request (less the Python timers'
    own cost inside them) and share of the instrumented total."""

    def cost(ns: int, wrapped: int) -> float:
        return max(0.0, ns - overhead_ns * wrapped) / count

    out: list[dict[str, Any]] = []
    for found, ((expr_ns, expr_calls, expr_wrapped), actions) in zip(rules, snapshot, strict=True):
        parts = []
        expressions: dict[str, Any] | None = None
        if found.expressions is not None:
            each = cost(expr_ns, expr_wrapped)
            expressions = {
                "us_per_request": each / 1000,
                "calls_per_request": expr_calls / count,
                "share": each / total_ns * 100 if total_ns else 0.0,
            }
            parts.append(each)
        action_rows: list[dict[str, Any]] = []
        for index, ((step, _), (ns, calls, wrapped)) in enumerate(
            zip(found.actions, actions, strict=True)
        ):
            each = cost(ns, wrapped)
            parts.append(each)
            action_rows.append(
                {
                    "type": step.type,
                    "index": index,
                    "us_per_request": each / 1000,
                    "calls_per_request": calls / count,
                    "share": each / total_ns * 100 if total_ns else 0.0,
                }
            )
        action_rows.sort(key=lambda row: -row["us_per_request"])
        rule_ns = sum(parts)
        rule = found.rule
        out.append(
            {
                "rule": rule.label,
                "phase": rule.phase.value,
                "index": rule.index,
                "us_per_request": rule_ns / 1000,
                "share": rule_ns / total_ns * 100 if total_ns else 0.0,
                "expressions": expressions,
                "actions": action_rows,
            }
        )
    out.sort(key=lambda row: -row["us_per_request"])
    rest = max(0.0, total_ns - sum(row["us_per_request"] * 1000 for row in out))
    return {
        "instrumented_us_per_request": total_ns / 1000,
        "rules": out,
        "engine": {
            "us_per_request": rest / 1000,
            "share": rest / total_ns * 100 if total_ns else 100.0,
        },
    }


# --- both backends -----------------------------------------------------------------------


def measure_backends(
    argv: Sequence[str], backends: Sequence[native.Backend] = BACKENDS
) -> dict[str, Any]:
    """Run `edgeward bench policy ARGV --json --this-backend` once per
    backend (the facade picks its backend at import: one process each);
    a backend that cannot run is reported with the reason."""
    results: dict[str, Any] = {}
    unavailable: dict[str, str] = {}
    for backend in backends:
        env = {**os.environ, "EDGEWARD_BACKEND": backend}
        command = [sys.executable, "-m", "edgeward.cli", "bench", "policy", *argv]
        done = subprocess.run(
            [*command, "--json", "--this-backend"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            results[backend] = json.loads(done.stdout)
        elif backend == "rust" and _missing_native(done.stderr):
            unavailable[backend] = "the compiled module (edgeward_native) is not installed"
        else:
            raise BackendFailed(backend, done.returncode, done.stdout + done.stderr)
    return {"backends": results, "unavailable": unavailable}


def _missing_native(stderr: str) -> bool:
    """Whether a child asked for the rust backend failed because the module
    is missing (`edgeward.native` raises the ImportError of `import
    edgeward_native`), not for another reason."""
    lines = stderr.strip().splitlines()
    last = lines[-1] if lines else ""
    return last.startswith(("ImportError", "ModuleNotFoundError")) and "edgeward_native" in last


class BackendFailed(RuntimeError):
    def __init__(self, backend: str, code: int, output: str) -> None:
        super().__init__(f"the {backend} backend's run failed (exit {code}):\n{output.rstrip()}")
        self.code = code
        self.output = output
