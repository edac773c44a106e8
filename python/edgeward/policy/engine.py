"""The compiled policy: runs the phases of an exchange, without I/O.

`CompiledPolicy` implements `edgeward.hooks.PolicyHooks`; `PolicyExchange`
implements `ExchangeHooks`. The rule loop is the hot path: the activation is
built once per phase with only the variables the policy reads, a run of
traffic-only rules is tested by one CEL program, and a phase whose actions
need no I/O runs as plain calls and the hook returns its outcome (a
generator only when an action may yield an effect).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from edgeward import native
from edgeward.hooks import (
    CloseConnection,
    ConnectionInfo,
    Effect,
    EffectResult,
    EndpointInfo,
    ExchangeSummary,
    Forward,
    Hooked,
    PassResponse,
    RequestHead,
    RequestOutcome,
    ResponseHead,
    ResponseOutcome,
    TerminateTls,
    TlsTerminated,
)
from edgeward.ipintel import EMPTY as NO_IP_INTELLIGENCE
from edgeward.policy.actions._body import content_encoding, encoded_here, pipeline
from edgeward.policy.actions._http import error_response
from edgeward.policy.actions.base import Decision
from edgeward.policy.config import EngineOptions, redact_value, redactor
from edgeward.policy.context import (
    ActionContext,
    ExchangeState,
    Roots,
    TraceEntry,
    Variables,
)
from edgeward.policy.errors import ActionError, Diagnostic, ErrorCode
from edgeward.policy.events import EventSink, NullSink
from edgeward.policy.loader import LoadedPolicy, Rule, Step
from edgeward.policy.model import Phase
from edgeward.policy.native_phase import (
    native_decision,
    resume_context,
    run_request,
    run_response,
    runner,
)
from edgeward.policy.sse import MAX_MESSAGE, Block, EventStreamParser, Message, is_event_stream
from edgeward.policy.variables import conn_fields


@dataclass(frozen=True, slots=True)
class PhaseRules:
    phase: Phase
    rules: tuple[Rule, ...]
    effects: bool  # an action may yield an effect: the phase runs as a generator
    roots: Roots  # the variables of its activation
    runner: native.PhaseRunnerType | None = None  # the phase in one native call (native_phase)


class CompiledPolicy:
    """One endpoint's (or listener's) policy, compiled. Immutable and shared
    by every connection; per-exchange state lives in `PolicyExchange`."""

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
        self.clock: Callable[[], float] = options.clock or time.time
        self.body_limit = options.body_limit
        # Secret values never leave in an event or a trace (docs/cel.md §11.6).
        self.redact = redactor(options.secrets)
        self.variables = variables = Variables(
            loaded.references, options.ip_intelligence or NO_IP_INTELLIGENCE
        )
        self._tcp, self._request, self._response, self._sse = (
            PhaseRules(
                phase,
                rules := loaded.rules.get(phase, ()),
                any(rule.needs_effects for rule in rules),
                variables.roots.get(phase, ()),
            )
            for phase in (
                Phase.TCP_CONNECT,
                Phase.HTTP_REQUEST,
                Phase.HTTP_RESPONSE,
                Phase.EVENT_STREAM_MESSAGE,
            )
        )
        # The HTTP phases in one native call each, unless a program reads
        # `actions.*` (results the native actions do not record).
        self.conn_fields = conn_fields(options.ip_intelligence or NO_IP_INTELLIGENCE)
        if not variables.reads_results:
            self._request = replace(self._request, runner=runner(self._request.rules))
            self._response = replace(self._response, runner=runner(self._response.rules))

    def map_rules(
        self,
        change: Callable[[Rule], Rule],
        runner: Callable[[tuple[Rule, ...]], native.PhaseRunnerType | None] | None = None,
    ) -> CompiledPolicy:
        """A copy of this policy whose every rule is `change(rule)`: how
        `edgeward bench policy` puts its timers around each rule's
        expressions and actions (the copy shares everything else). The
        copy's phases run in the Python engine, or, with `runner`, a phase
        this policy runs natively in `runner(its rules)` (bench's, timed)."""
        twin = copy.copy(self)
        twin.rules = {phase: tuple(map(change, rules)) for phase, rules in self.rules.items()}
        twin._tcp, twin._request, twin._response, twin._sse = (
            replace(
                phase,
                rules=tuple(map(change, phase.rules)),
                runner=None if runner is None or phase.runner is None else runner(phase.rules),
            )
            for phase in (self._tcp, self._request, self._response, self._sse)
        )
        return twin

    # --- PolicyHooks ---------------------------------------------------------

    def on_tcp_connect(self, conn: ConnectionInfo, endpoint: EndpointInfo | None = None) -> bool:
        return self.connect(conn, endpoint) is None

    def on_tls_connect(self, conn: ConnectionInfo, endpoint: EndpointInfo) -> Hooked[bool]:
        if not self._tcp.effects:
            return self.connect(conn, endpoint) is None
        return self._tls_connect(conn, endpoint)

    def _tls_connect(
        self, conn: ConnectionInfo, endpoint: EndpointInfo
    ) -> Generator[Effect, EffectResult, bool]:
        decision = yield from self._connect(conn, endpoint, None)
        return decision is None

    def connect(
        self,
        conn: ConnectionInfo,
        endpoint: EndpointInfo | None,
        trace: list[TraceEntry] | None = None,
    ) -> Decision | None:
        """Run `on_tcp_connect`: the decision that closes the connection, or
        None. What its actions record stays visible to the connection's
        exchanges (`actions.ngrok.restrict_ips.*`). TLS cannot be
        terminated from here: a `terminate-tls` is answered with the TLS
        the listener negotiated, if any (`no_termination`)."""
        if not self._tcp.rules:
            return None
        gen = self._connect(conn, endpoint, trace)
        try:
            effect = gen.send(None)
            while True:
                if not isinstance(effect, TerminateTls):
                    raise RuntimeError(f"an on_tcp_connect action asked for {effect!r}")
                effect = gen.send(no_termination(conn))
        except StopIteration as stop:
            decision: Decision | None = stop.value
        finally:
            gen.close()
        return decision

    def _connect(
        self,
        conn: ConnectionInfo,
        endpoint: EndpointInfo | None,
        trace: list[TraceEntry] | None,
    ) -> Generator[Effect, EffectResult, Decision | None]:
        state = ExchangeState(self, conn, endpoint, None)
        state.trace = trace
        phase = self._tcp
        decision = yield from run_phase(ActionContext(phase.phase, state, phase.roots), phase)
        results = state.results["ngrok"]
        if results and decision is None:
            conn.policy_state[self] = results
        return decision

    def begin(
        self, conn: ConnectionInfo, endpoint: EndpointInfo, head: RequestHead, request_id: str
    ) -> PolicyExchange:
        tcp: Any = conn.policy_state.get(self) if self._tcp.rules else None
        return PolicyExchange(self, conn, endpoint, request_id, dict(tcp) if tcp else None)


class PolicyExchange(ExchangeState):
    """A compiled policy's `ExchangeHooks` for one request/response exchange
    (and the state its phases share). The proxy's side of the exchange, the
    bytes in flight, is `edgeward.proxy.exchange.ProxyExchange`."""

    __slots__ = ()

    def on_http_request(self, head: RequestHead) -> Hooked[RequestOutcome]:
        self.received = head
        self.received_at = self.policy.clock()
        phase = self.policy._request
        if not phase.rules:
            return Forward(head)
        if phase.runner is not None and self.trace is None:
            forward, stop, answer, vars = run_request(
                phase.runner, self, head, self.policy.conn_fields, phase.rules
            )
            if stop is None:
                return Forward(forward, self.body)
            ctx = resume_context(phase.phase, self, phase.roots, request=forward, vars=vars)
            if answer is not None:
                return self._request_outcome(_answered(ctx, phase.rules, *stop, answer), ctx)
            if phase.effects:
                return self._request_with_effects(ctx, phase, *stop)
            return self._request_outcome(run_rules(ctx, phase.rules, *stop), ctx)
        # Actions change a copy; `req.*` keeps showing what the client sent.
        forward = RequestHead(
            head.method,
            head.target,
            head.authority,
            head.scheme,
            list(head.headers),
            head.http_version,
        )
        ctx = ActionContext(phase.phase, self, phase.roots, request=forward)
        if phase.effects:
            return self._request_with_effects(ctx, phase)
        return self._request_outcome(run_rules(ctx, phase.rules), ctx)

    def _request_with_effects(
        self, ctx: ActionContext, phase: PhaseRules, start: int = 0, step: int = -1
    ) -> Generator[Effect, EffectResult, RequestOutcome]:
        decision = yield from run_phase(ctx, phase, start, step)
        return self._request_outcome(decision, ctx)

    def _request_outcome(self, decision: Decision | None, ctx: ActionContext) -> RequestOutcome:
        if decision is not None:
            return decision.response or decision.forward or CloseConnection()
        assert ctx.request is not None
        return Forward(ctx.request, self.body, ctx.body_filter)

    def on_http_response(self, head: ResponseHead) -> Hooked[ResponseOutcome]:
        phase = self.policy._response
        if not phase.rules and not self.policy._sse.rules:
            return PassResponse(head)
        if (
            phase.runner is not None
            and self.trace is None
            and self.received is not None
            and not self.policy._sse.rules
        ):
            resumed, (start, step), answer = run_response(
                phase.runner,
                self,
                head,
                conn_fields=self.policy.conn_fields,
                roots=phase.roots,
                phase=phase.phase,
                rules=phase.rules,
            )
            if resumed is None:
                return PassResponse(head)
            if answer is not None:
                decision = _answered(resumed, phase.rules, start, step, answer)
                return self._response_outcome(resumed, decision)
            if phase.effects:
                return self._response_with_effects(resumed, phase, start, step)
            return self._response_outcome(resumed, run_rules(resumed, phase.rules, start, step))
        ctx = ActionContext(phase.phase, self, phase.roots, response=head)
        if phase.effects:
            return self._response_with_effects(ctx, phase)
        return self._response_outcome(ctx, run_rules(ctx, phase.rules))

    def _response_with_effects(
        self, ctx: ActionContext, phase: PhaseRules, start: int = 0, step: int = -1
    ) -> Generator[Effect, EffectResult, ResponseOutcome]:
        decision = yield from run_phase(ctx, phase, start, step)
        return self._response_outcome(ctx, decision)

    def _response_outcome(self, ctx: ActionContext, decision: Decision | None) -> ResponseOutcome:
        if decision is not None:
            return decision.response or CloseConnection()
        assert ctx.response is not None
        if self.policy._sse.rules:
            _event_stream(self, ctx)
        return PassResponse(ctx.response, ctx.body_filter)

    def on_complete(self, summary: ExchangeSummary) -> None:
        if self.completions:
            now = self.policy.clock()
            for callback in self.completions:
                callback(summary, now)


def no_termination(conn: ConnectionInfo) -> TlsTerminated:
    """The answer to `TerminateTls` where the edge cannot terminate TLS:
    the listener's TLS when it terminated it (the policy checks it), else
    a failure (the policy closes the connection: never plaintext where TLS
    was asked for)."""
    if conn.tls is not None:
        return TlsTerminated(conn.tls, by_listener=True)
    return TlsTerminated(None, "the edge does not terminate TLS on this connection")


# --- on_event_stream_message ---------------------------------------------------------


def _event_stream(exchange: PolicyExchange, ctx: ActionContext) -> None:
    """Run the phase on each message of a `text/event-stream` response: a
    text filter first in the body pipeline (it sees the messages as the
    upstream sent them). A body the upstream encoded is left alone."""
    head = ctx.response
    received = ctx.received
    assert head is not None
    if (
        head.status < 200
        or head.status in (204, 304)
        or (received is not None and received.method == b"HEAD")
        or not is_event_stream(next((v for n, v in head.headers if n == b"content-type"), b""))
    ):
        return
    coding = content_encoding(head.headers)
    if coding and not encoded_here(ctx):
        ctx.rule = ""
        ctx.emit(
            None,
            "skip",
            f"{Phase.EVENT_STREAM_MESSAGE.value} not run: the upstream sent the stream"
            f" {coding}-encoded",
        )
        return
    pipeline(ctx).text.insert(0, EventStreamPhase(exchange, head))


class EventStreamPhase:
    """A `BodyFilter` that parses the stream (`policy.sse`) and runs the
    phase's rules on each message; what they change is written back, the
    rest passes byte for byte. A rule that fails (fail closed) drops its
    message; `on_error: continue` keeps it."""

    __slots__ = ("exchange", "head", "parser", "reported")

    def __init__(self, exchange: PolicyExchange, head: ResponseHead) -> None:
        self.exchange = exchange
        self.head = head
        self.parser = EventStreamParser()
        self.reported = False

    def feed(self, data: bytes) -> bytes:
        return self._run(self.parser.feed(data))

    def finish(self) -> bytes:
        return self._run(self.parser.finish())

    def _run(self, items: list[Block | bytes]) -> bytes:
        out = []
        for item in items:
            if isinstance(item, bytes):
                out.append(item)
            elif item.is_message:
                out.append(self._message(item))
            else:
                out.append(item.raw())
        if self.parser.oversized and not self.reported:
            self.reported = True
            phase = self.exchange.policy._sse
            ActionContext(phase.phase, self.exchange, ()).emit(
                None,
                "skip",
                f"a message over {MAX_MESSAGE} bytes passed unchanged (not run through the phase)",
            )
        return b"".join(out)

    def _message(self, block: Block) -> bytes:
        phase = self.exchange.policy._sse
        message = Message.of(block)
        ctx = ActionContext(
            phase.phase, self.exchange, phase.roots, response=self.head, message=message
        )
        if run_rules(ctx, phase.rules) is not None:
            return b""
        return message.encode()


# --- the rule loop -------------------------------------------------------------------
#
# Rules run in order; the first `Decision` ends the phase. Errors fail closed
# (500) unless the rule says `on_error: continue`. `run_rules` is the loop of
# a phase whose actions need no I/O; `run_phase` the same as a generator.
# Both start at rule `start`; with `step` >= 0 inside it, its expressions
# having held (where the native runner stopped: native_phase).


def _resume(
    ctx: ActionContext, rules: tuple[Rule, ...], i: int, step: int
) -> int | Decision | None:
    if step >= 0:
        return i
    return next_match(ctx, rules, i)


def run_rules(
    ctx: ActionContext, rules: tuple[Rule, ...], start: int = 0, at_step: int = -1
) -> Decision | None:
    found = _resume(ctx, rules, start, at_step)
    while found is not None:
        if isinstance(found, Decision):
            return found
        rule = rules[found]
        ctx.rule = rule.label
        for step in rule.steps[at_step:] if at_step > 0 else rule.steps:
            try:
                decision = step.action.apply(ctx)
            except (native.EvalError, ActionError) as exc:
                decision = _action_failed(ctx, rule, step.type, exc)
                if decision is None:
                    break  # on_error: continue
                return decision
            if ctx.state.trace is not None:
                _trace_step(ctx, rule, step, decision)
            if decision is not None:
                return _decided(ctx, step.type, decision)
        at_step = -1
        found = next_match(ctx, rules, found + 1)
    return None


def run_phase(
    ctx: ActionContext, phase: PhaseRules, start: int = 0, at_step: int = -1
) -> Generator[Effect, EffectResult, Decision | None]:
    rules = phase.rules
    found = _resume(ctx, rules, start, at_step)
    while found is not None:
        if isinstance(found, Decision):
            return found
        rule = rules[found]
        ctx.rule = rule.label
        for step in rule.steps[at_step:] if at_step > 0 else rule.steps:
            try:
                if step.needs_effects:
                    decision = yield from step.action.run(ctx)
                else:
                    decision = step.action.apply(ctx)
            except (native.EvalError, ActionError) as exc:
                decision = _action_failed(ctx, rule, step.type, exc)
                if decision is None:
                    break  # on_error: continue
                return decision
            if ctx.state.trace is not None:
                _trace_step(ctx, rule, step, decision)
            if decision is not None:
                return _decided(ctx, step.type, decision)
        at_step = -1
        found = next_match(ctx, rules, found + 1)
    return None


def next_match(ctx: ActionContext, rules: tuple[Rule, ...], i: int) -> int | Decision | None:
    """The index of the first rule from `i` whose expressions hold, the
    fail-closed `Decision` of a rule whose expressions failed, or None.

    A rule starting a run of rules whose expressions read only the traffic
    (`Rule.chain`: not `vars` or `actions`, which actions change) tests the
    whole run with one program giving the index of the first match; on an
    error in it each rule is tested on its own, which finds the same first
    match and reports the error against the right rule."""
    trace = ctx.state.trace
    n = len(rules)
    while i < n:
        rule = rules[i]
        chain = rule.chain
        if chain is not None:
            try:
                first: int = chain.evaluate(ctx.activation)
            except native.EvalError:
                pass  # rule by rule, from this one
            else:
                if trace is not None:
                    trace.extend(
                        TraceEntry(ctx.phase, r.label, None, "not matched") for r in rules[i:first]
                    )
                if first >= rule.chain_end:  # none of the run matched
                    i = first
                    continue
                i, rule = first, rules[first]
                break
        if rule.condition is None:
            break
        matched = test(ctx, rule)
        if matched is True:
            break
        if matched is not False:
            return matched
        i += 1
    else:
        return None
    if trace is not None:
        trace.append(TraceEntry(ctx.phase, rule.label, None, "matched"))
    return i


def test(ctx: ActionContext, rule: Rule) -> bool | Decision:
    """Whether the rule's expressions hold; on an error the fail-closed
    `Decision`, or False under `on_error: continue`."""
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
    return False if failure is None else failure


def _answered(
    ctx: ActionContext, rules: tuple[Rule, ...], i: int, step: int, answer: Any
) -> Decision:
    """The decision of a step the native runner performed (`answer`), told
    as the rule loop tells any decision."""
    rule = rules[i]
    ctx.rule = rule.label
    return _decided(ctx, rule.steps[step].type, native_decision(rule, step, ctx, answer))


def _decided(ctx: ActionContext, action: str, decision: Decision) -> Decision:
    response = decision.response
    ctx.emit(
        action,
        decision.verdict,
        decision.reason,
        status=response.status if response else None,
        error_code=response.error_code if response else None,
    )
    return decision


def _action_failed(
    ctx: ActionContext, rule: Rule, action: str, exc: native.EvalError | ActionError
) -> Decision | None:
    """The failure `Decision`, or None when the rule goes on (the rest of
    its actions are skipped)."""
    if isinstance(exc, ActionError):
        return _failure(ctx, rule, action, exc.code, exc.message, status=exc.status)
    message = f"{exc.kind}: {exc.message}"
    return _failure(ctx, rule, action, ErrorCode.INTERPOLATION_FAILED, message)


def _trace_step(ctx: ActionContext, rule: Rule, step: Step, decision: Decision | None) -> None:
    assert ctx.state.trace is not None
    outcome = "ran" if decision is None else ctx.state.policy.redact(_describe(decision))
    results = ctx.state.results["ngrok"].get(type(step.action).results_name())
    if results is not None:
        results = redact_value(results, ctx.state.policy.redact)
    ctx.state.trace.append(TraceEntry(ctx.phase, rule.label, step.type, outcome, results))


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
    message = ctx.state.policy.redact(message)
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
    return Decision(
        "error", message, error_response(ctx, status, code, "the traffic policy failed")
    )


def _describe(decision: Decision) -> str:
    response = decision.response
    if decision.forward is not None:
        answer = f"forwarded to {decision.forward.url}"
    elif response is None:
        answer = "closed the connection"
    else:
        answer = f"answered {response.status}"
    return f"{answer} ({decision.verdict}: {decision.reason})"
