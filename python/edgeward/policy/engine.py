"""The compiled policy: runs the phases of an exchange, without I/O.

`CompiledPolicy` implements `edgeward.hooks.PolicyHooks`; `Exchange`
implements `ExchangeHooks`. The rule loop (`run_phase`) is the hot path: a
rule's expressions are one CEL program evaluated against a lazy activation,
and actions that need no I/O are called directly, not through a generator.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping

from edgeward import native
from edgeward.hooks import (
    CloseConnection,
    ConnectionInfo,
    Effect,
    EffectResult,
    EndpointInfo,
    ExchangeSummary,
    Forward,
    LocalResponse,
    PassResponse,
    RequestHead,
    RequestOutcome,
    ResponseHead,
    ResponseOutcome,
)
from edgeward.policy.actions.base import Decision
from edgeward.policy.config import EngineOptions
from edgeward.policy.context import ActionContext, ExchangeState, TraceEntry, default_clock
from edgeward.policy.errors import ActionError, Diagnostic, ErrorCode
from edgeward.policy.events import EventSink, NullSink
from edgeward.policy.loader import LoadedPolicy, Rule
from edgeward.policy.model import Phase

_JSON = [(b"content-type", b"application/json")]


class CompiledPolicy:
    """One endpoint's (or listener's) policy, compiled. Immutable and shared
    by every connection; per-exchange state lives in `Exchange`."""

    def __init__(
        self,
        loaded: LoadedPolicy,
        *,
        events: EventSink | None = None,
        options: EngineOptions | None = None,
    ) -> None:
        options = options or EngineOptions()
        self.rules: Mapping[Phase, tuple[Rule, ...]] = loaded.rules
        self.warnings: tuple[Diagnostic, ...] = loaded.warnings
        self.events: EventSink = events or NullSink()
        self.clock: Callable[[], float] = options.clock or default_clock
        self.body_limit = options.body_limit
        self.secrets = options.secrets
        self._tcp = loaded.rules.get(Phase.TCP_CONNECT, ())
        self._request = loaded.rules.get(Phase.HTTP_REQUEST, ())
        self._response = loaded.rules.get(Phase.HTTP_RESPONSE, ())

    def state(
        self, conn: ConnectionInfo, endpoint: EndpointInfo | None, request_id: str | None
    ) -> ExchangeState:
        return ExchangeState(
            conn,
            endpoint,
            request_id,
            clock=self.clock,
            events=self.events,
            body_limit=self.body_limit,
            secrets=self.secrets,
        )

    # --- PolicyHooks ---------------------------------------------------------

    def on_tcp_connect(self, conn: ConnectionInfo) -> bool:
        return self.tcp_decision(self.state(conn, None, None)) is None

    def tcp_decision(self, state: ExchangeState) -> Decision | None:
        if not self._tcp:
            return None
        ctx = ActionContext(Phase.TCP_CONNECT, state)
        return _run_sync(run_phase(ctx, self._tcp))

    def begin(
        self, conn: ConnectionInfo, endpoint: EndpointInfo, head: RequestHead, request_id: str
    ) -> Exchange:
        return Exchange(self, self.state(conn, endpoint, request_id))


class Exchange:
    """The policy's decisions for one request/response exchange."""

    __slots__ = ("_policy", "state")

    def __init__(self, policy: CompiledPolicy, state: ExchangeState) -> None:
        self._policy = policy
        self.state = state

    def on_http_request(self, head: RequestHead) -> Generator[Effect, EffectResult, RequestOutcome]:
        state = self.state
        state.received = head
        state.received_at = state.clock()
        rules = self._policy._request
        if not rules:
            return Forward(head)
        # Actions change a copy; `req.*` keeps showing what the client sent.
        forward = RequestHead(
            head.method,
            head.target,
            head.authority,
            head.scheme,
            list(head.headers),
            head.http_version,
        )
        ctx = ActionContext(Phase.HTTP_REQUEST, state, request=forward)
        decision = yield from run_phase(ctx, rules)
        if decision is not None:
            return decision.response or CloseConnection()
        return Forward(forward, state.body)

    def on_http_response(
        self, head: ResponseHead
    ) -> Generator[Effect, EffectResult, ResponseOutcome]:
        rules = self._policy._response
        if not rules:
            return PassResponse(head)
        ctx = ActionContext(Phase.HTTP_RESPONSE, self.state, response=head)
        decision = yield from run_phase(ctx, rules)
        if decision is not None:
            return decision.response or CloseConnection()
        return PassResponse(ctx.response or head, ctx.body_filter)

    def on_complete(self, summary: ExchangeSummary) -> None:
        pass


class _Skipped:
    """A rule failed under `on_error: continue`: the phase goes on after it."""


SKIPPED = _Skipped()
RuleOutcome = Decision | _Skipped | None  # None: the rule ran and the phase goes on


def run_phase(
    ctx: ActionContext, rules: tuple[Rule, ...]
) -> Generator[Effect, EffectResult, Decision | None]:
    """Run `rules` in order; the first `Decision` ends the phase. Errors
    fail closed (500) unless the rule says `on_error: continue`.

    Consecutive rules whose expressions read only the traffic (not `vars`
    or `actions`, which earlier actions change) are tested by one CEL
    program that returns the index of the first match (`Rule.chain`); on an
    error in it, each rule is evaluated on its own, which finds the same
    first match and reports the error against the right rule."""
    trace = ctx.state.trace
    i, n = 0, len(rules)
    while i < n:
        rule = rules[i]
        if rule.chain is not None:
            first = _first_match(ctx, rule, rules, i)
            if first is not None:
                if first >= rule.chain_end:  # none of the run matched
                    i = first
                    continue
                rule = rules[first]
                i = first
                matched: bool | RuleOutcome = True
            else:
                matched = _test(ctx, rule)
        else:
            matched = True if rule.condition is None else _test(ctx, rule)
        i += 1
        if matched is False or matched is SKIPPED:
            continue
        if isinstance(matched, Decision):
            return matched
        if trace is not None:
            trace.append(TraceEntry(ctx.phase, rule.label, None, "matched"))
        outcome = yield from _run_actions(ctx, rule)
        if isinstance(outcome, Decision):
            return outcome
    return None


def _first_match(ctx: ActionContext, rule: Rule, rules: tuple[Rule, ...], i: int) -> int | None:
    """The index of the first rule of `rule`'s chain that matches (its
    `chain_end` when none does), or None to test rule `i` on its own."""
    assert rule.chain is not None
    try:
        first: int = rule.chain.evaluate(ctx.activation)
    except native.EvalError:
        return None
    trace = ctx.state.trace
    if trace is not None:
        trace.extend(TraceEntry(ctx.phase, r.label, None, "not matched") for r in rules[i:first])
    return first


def _test(ctx: ActionContext, rule: Rule) -> bool | Decision | _Skipped:
    """Whether the rule's expressions hold; on an error the fail-closed
    `Decision`, or `SKIPPED` under `on_error: continue`."""
    assert rule.condition is not None
    ctx.rule = rule.label
    try:
        matched = rule.condition.evaluate(ctx.activation)
    except native.EvalError as exc:
        message = f"{exc.kind}: {exc.message}"
    else:
        if matched is True:
            return True
        if matched is False:
            if ctx.state.trace is not None:
                ctx.state.trace.append(TraceEntry(ctx.phase, rule.label, None, "not matched"))
            return False
        message = f"expressions gave {type(matched).__name__}, not a bool"
    failure = _failure(ctx, rule, None, ErrorCode.EXPRESSION_FAILED, message)
    return SKIPPED if failure is None else failure


def _run_actions(ctx: ActionContext, rule: Rule) -> Generator[Effect, EffectResult, RuleOutcome]:
    """Run a matched rule's actions: the phase-ending `Decision`, None to go
    on, or `SKIPPED` when an action failed under `on_error: continue`."""
    ctx.rule = rule.label
    trace = ctx.state.trace
    for step in rule.steps:
        try:
            if step.needs_effects:
                decision = yield from step.action.run(ctx)
            else:
                decision = step.action.apply(ctx)
        except native.EvalError as exc:
            failure = _failure(
                ctx, rule, step.type, ErrorCode.INTERPOLATION_FAILED, f"{exc.kind}: {exc.message}"
            )
            return SKIPPED if failure is None else failure
        except ActionError as exc:
            failure = _failure(ctx, rule, step.type, exc.code, exc.message, status=exc.status)
            return SKIPPED if failure is None else failure
        if trace is not None:
            key = type(step.action).results_name()
            outcome = "ran" if decision is None else _describe(decision)
            results = ctx.state.results["ngrok"].get(key)
            trace.append(TraceEntry(ctx.phase, rule.label, step.type, outcome, results))
        if decision is not None:
            response = decision.response
            ctx.emit(
                step.type,
                decision.verdict,
                decision.reason,
                status=response.status if response else None,
                error_code=response.error_code if response else None,
            )
            return decision
    return None


def _failure(
    ctx: ActionContext,
    rule: Rule,
    action: str | None,
    code: ErrorCode,
    message: str,
    *,
    status: int = 500,
) -> Decision | None:
    """Fail closed (a 500 decision), or None when the rule goes on."""
    verdict = "continue" if rule.continue_on_error else "error"
    ctx.emit(
        action,
        verdict,
        message,
        status=None if rule.continue_on_error else status,
        error_code=code.value,
    )
    if ctx.state.trace is not None:
        ctx.state.trace.append(
            TraceEntry(ctx.phase, rule.label, action, f"error ({verdict}): {message}")
        )
    if rule.continue_on_error:
        return None
    body = f'{{"error_code":"{code.value}","message":"the traffic policy failed"}}\n'.encode()
    return Decision("error", message, LocalResponse(status, list(_JSON), body, code.value))


def _describe(decision: Decision) -> str:
    response = decision.response
    answer = "closed the connection" if response is None else f"answered {response.status}"
    return f"{answer} ({decision.verdict}: {decision.reason})"


def _run_sync(gen: Generator[Effect, EffectResult, Decision | None]) -> Decision | None:
    """Drive a phase that must not need I/O (on_tcp_connect)."""
    try:
        effect = gen.send(None)
    except StopIteration as stop:
        result: Decision | None = stop.value
        return result
    gen.close()
    raise RuntimeError(f"an on_tcp_connect action asked for {effect!r}")
