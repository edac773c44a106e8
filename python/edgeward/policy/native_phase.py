"""The HTTP phases in one native call (`native.PhaseRunner`).

At load time each HTTP phase's rules are handed to the runner: the compiled
programs, and the actions it runs itself in a compact form (add-headers,
remove-headers, restrict-ips with lists known at load, the bucket check of
rate-limit in its native store, deny, custom-response, redirect,
url-rewrite, set-vars, basic-auth's check of credentials known at load,
log's metadata); every other action is a step the runner stops at.
Per request the head goes in once; the runner builds the variables it
knows, evaluates the rules in order, applies those actions and returns
where it stopped: the end of the phase, or a rule (and step) from which the
Python engine (`engine.run_rules`) resumes, or a step it performed whose
answer ends the phase (a refused rate-limit or basic-auth, deny,
custom-response, redirect: the engine turns it into the action's decision,
`native_decision`), and the metadata of the log steps it ran (events as
data: `tell_logged` emits them through `Log.tell` before the engine goes
on), so every decision, event and error answer keeps one
implementation. The Python engine alone is the reference
(``EDGEWARD_BACKEND=python``, `policy test` traces), and the differential
tests hold the two to the same decisions (docs/policy.md, "The native phase
runner").
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any

from edgeward import native
from edgeward.expr.interpolate import escape_url_value
from edgeward.hooks import RequestHead, ResponseHead
from edgeward.policy.actions.add_headers import AddHeaders
from edgeward.policy.actions.base import Decision
from edgeward.policy.actions.basic_auth import BasicAuth
from edgeward.policy.actions.custom_response import CustomResponse
from edgeward.policy.actions.deny import Deny
from edgeward.policy.actions.log import Log
from edgeward.policy.actions.rate_limit import RateLimit
from edgeward.policy.actions.redirect import Redirect
from edgeward.policy.actions.remove_headers import RemoveHeaders
from edgeward.policy.actions.restrict_ips import RestrictIps
from edgeward.policy.actions.set_vars import SetVars
from edgeward.policy.actions.url_rewrite import UrlRewrite, forwarded
from edgeward.policy.config import constant
from edgeward.policy.context import TIME_FIELDS, ActionContext, ExchangeState, Roots
from edgeward.policy.errors import ActionError
from edgeward.policy.expressions import Renderable, UrlTemplate
from edgeward.policy.loader import Rule, Step
from edgeward.policy.model import Phase
from edgeward.policy.ratelimit import NativeStore
from edgeward.policy.regex import replace_all
from edgeward.policy.values import Constant, Evaluator, Expression, ListValue, MapValue, Text
from edgeward.policy.variables import (
    ABSENT,
    ENDPOINT_FIELDS,
    REQUEST_FIELDS,
    RESPONSE_FIELDS,
    USER_AGENT_FIELDS,
    Fields,
    LazyMap,
    RequestSource,
    ResponseSource,
)


def runner(rules: tuple[Rule, ...], *, timed: bool = False) -> native.PhaseRunnerType | None:
    """The phase's runner, or None where the Python engine runs it (the
    pure-Python backend, rules whose programs are not native). `timed`:
    in timing mode (`edgeward bench policy`), each rule tested on its own
    (no chain), so that each rule's time is its own."""
    if native.PhaseRunner is None or not rules:
        return None
    compact = []
    for rule in rules:
        programs = (rule.condition, rule.chain)
        if any(p is not None and not isinstance(p, native.Program) for p in programs):
            return None  # wrapped (`edgeward bench policy` timers): the engine's
        chain, chain_end = (None, 0) if timed else (rule.chain, rule.chain_end)
        compact.append((rule.condition, chain, chain_end, [_step(step) for step in rule.steps]))
    return native.PhaseRunner(compact, user_agent=user_agent_fields, timed=timed)


@lru_cache(maxsize=4096)  # the same clients come back
def user_agent_fields(raw: str) -> dict[str, Any]:
    """`req.user_agent` read into (`.is_bot`): all its fields at once."""
    return {key: build(raw) for key, build in USER_AGENT_FIELDS.items()}  # type: ignore[operator]


def _step(step: Step) -> tuple[Any, ...]:
    action = step.action
    kind = type(action)
    if kind is AddHeaders:
        assert isinstance(action, AddHeaders)
        return ("add-headers", [(raw, value) for _, raw, value in action.headers], action.sets_host)
    if kind is RemoveHeaders:
        assert isinstance(action, RemoveHeaders)
        return ("remove-headers", sorted(action.raw))
    if kind is RestrictIps:
        assert isinstance(action, RestrictIps)
        if action.static is not None:
            return ("restrict-ips", action.static.policy, action.enforce)
    if kind is Deny:
        return ("deny",)
    if kind is CustomResponse:
        assert isinstance(action, CustomResponse)
        headers = [(name.encode("latin-1"), _value(v)) for name, v in action.headers.items()]
        return ("custom-response", action.body, headers)
    if kind is Redirect or kind is UrlRewrite:
        assert isinstance(action, Redirect | UrlRewrite)
        rewrite = action.rewrite
        parts = _url_parts(rewrite.replacement)
        if parts is not None and (rewrite.pattern is None or rewrite.static_pattern is not None):
            static = rewrite.static_pattern
            regex = None if rewrite.pattern is None else partial(replace_all, static)
            if isinstance(action, UrlRewrite):
                return ("url-rewrite", parts, escape_url_value, regex, _forwarded)
            headers = [(name.encode("latin-1"), _value(v)) for name, v in action.headers.items()]
            return ("redirect", parts, escape_url_value, regex, headers)
    if kind is SetVars:
        assert isinstance(action, SetVars)
        entries = [(name, _var_value(value)) for name, value in action.entries]
        if all(value is not None for _, value in entries):
            return ("set-vars", entries)
    if kind is BasicAuth:
        assert isinstance(action, BasicAuth)
        if not action.dynamic:  # rendered per request: the engine's
            return ("basic-auth", list(action.static), action.enforce)
    if kind is Log:
        assert isinstance(action, Log)
        metadata = _var_value(action.metadata)
        if metadata is not None:
            return ("log", metadata)
    if kind is RateLimit:
        assert isinstance(action, RateLimit)
        store = action.store
        if isinstance(store, NativeStore) and all(
            isinstance(p, native.Program) for p in action.bucket_key
        ):
            keys = list(action.bucket_key)
            return (
                "rate-limit",
                store.buckets,
                action.capacity,
                action.window,
                keys,
                action.enforce,
            )
    return ("python",)


def _forwarded(url: str) -> tuple[bytes, bytes] | None:
    """`url_rewrite.forwarded` for the runner: None where it refuses the
    URL (the engine runs the step and reports it)."""
    try:
        return forwarded(url)
    except ActionError:
        return None


def _var_value(value: Evaluator) -> tuple[str, Any] | None:
    """A `set-vars` value as the runner evaluates it (`values`' shapes);
    None when it is another callable."""
    if isinstance(value, Constant):
        return ("constant", value.value)
    if isinstance(value, Expression) and isinstance(value.program, native.Program):
        return ("expression", value.program)
    if isinstance(value, Text) and isinstance(value.template, native.Template):
        return ("text", value.template)
    if isinstance(value, ListValue):
        items = [_var_value(item) for item in value.items]
        return None if None in items else ("items", items)
    if isinstance(value, MapValue):
        fields = [(key, _var_value(item)) for key, item in value.fields]
        return None if any(v is None for _, v in fields) else ("fields", fields)
    return None


def _url_parts(template: Renderable) -> list[str | native.Template] | None:
    """A URL template (`Rewrite.replacement`) as the runner renders it;
    None when it is neither a constant nor a `UrlTemplate`."""
    if isinstance(template, UrlTemplate):
        return list(template.parts)
    if isinstance(template, native.Template) and template.is_constant:
        return [constant(template)]
    return None


def native_decision(rule: Rule, step: int, ctx: ActionContext, answer: Any) -> Decision:
    """The decision of step `step` of `rule`, which the runner performed
    and answered `answer` (see `_step`): built by the action itself."""
    action = rule.steps[step].action
    if isinstance(action, RateLimit):
        return action.refused(ctx, float(answer))  # the Retry-After seconds
    if isinstance(action, CustomResponse):
        body, headers = answer  # rendered
        return action.respond(body, headers)
    if isinstance(action, BasicAuth):
        presented, username = answer
        return action.refused(ctx, presented, username)
    if isinstance(action, Redirect):
        # its results are recorded only when a program reads them, and
        # then the engine runs the phase
        location, headers = answer
        return action.respond(location, headers)
    assert isinstance(action, Deny), action
    return action.decision()  # (not `apply`: the runner ran the step)


def _value(template: native.Template) -> Any:
    """A header value as the runner takes it: bytes when constant (and
    allowed: else the runner renders it, finds CR/LF/NUL and stops)."""
    if template.is_constant and not any(c in constant(template) for c in "\r\n\0"):
        return constant(template).encode("utf-8")
    return template


class Fallback:
    """The variables the runner does not build, by root, as the engine's
    own builders make them (`LazyMap`: a field is built when read)."""

    __slots__ = ("conn_fields", "response", "state")

    def __init__(
        self, state: ExchangeState, conn_fields: Fields, response: ResponseHead | None
    ) -> None:
        self.state = state
        self.conn_fields = conn_fields
        self.response = response

    def __call__(self, root: str) -> Any:
        state = self.state
        if root == "req" and state.received is not None:
            source = RequestSource(state.received, state.received_at, state._body_received)
            return LazyMap(source, REQUEST_FIELDS)
        if root == "conn":
            return LazyMap(state.conn, self.conn_fields)
        if root == "endpoint" and state.endpoint is not None:
            return LazyMap(state.endpoint, ENDPOINT_FIELDS)
        if root == "res" and self.response is not None:
            response = self.response
            return LazyMap(ResponseSource(response.status, response.headers), RESPONSE_FIELDS)
        if root == "time":
            return LazyMap(state.policy.clock, TIME_FIELDS)
        if root == "vars":
            return {}  # none set yet (the runner's set-vars makes its own copy)
        if root == "actions":
            return state.results
        raise KeyError(root)


def run_request(
    runner: native.PhaseRunnerType,
    state: ExchangeState,
    head: RequestHead,
    conn_fields: Fields,
    rules: tuple[Rule, ...],
) -> tuple[RequestHead, tuple[int, int] | None, Any, dict[str, Any] | None]:
    """The request to forward (a copy: `req.*` keeps showing what the
    client sent), where the engine resumes (None: the phase is done),
    the answer of the step there when the runner performed it (else None:
    the engine runs the step) and the phase's `vars` so far (None: none).
    The events of the `log` steps it ran are emitted (`tell_logged`)."""
    rule, step, headers, authority, target, answer, vars, logged = runner.run(
        head, state.conn, Fallback(state, conn_fields, None), clock=state.policy.clock
    )
    if logged is not None:
        tell_logged(Phase.HTTP_REQUEST, state, rules, logged)
    forward = RequestHead(
        head.method,
        head.target if target is None else target,
        head.authority if authority is None else authority,
        head.scheme,
        list(head.headers) if headers is None else headers,
        head.http_version,
    )
    return forward, None if rule >= runner.rule_count else (rule, step), answer, vars


def run_response(
    runner: native.PhaseRunnerType,
    state: ExchangeState,
    head: ResponseHead,
    *,
    conn_fields: Fields,
    roots: Roots,
    phase: Phase,
    rules: tuple[Rule, ...],
) -> tuple[ActionContext | None, tuple[int, int], Any]:
    """Run the response phase on `head` (its headers edited in place); the
    context the engine resumes in (None when done), where, and the answer
    of the step there when the runner performed it (as `run_request`)."""
    received = state.received
    assert received is not None
    rule, step, headers, _, _, answer, vars, logged = runner.run(
        received, state.conn, Fallback(state, conn_fields, head), head, clock=state.policy.clock
    )
    if logged is not None:
        tell_logged(phase, state, rules, logged)
    ctx = None
    if rule < runner.rule_count:
        ctx = resume_context(phase, state, roots, response=head, vars=vars)
        if any(name == "res" for name, _ in roots):
            ctx.activation["res"]
    if headers is not None:
        head.headers[:] = headers
    return ctx, (rule, step), answer


def tell_logged(
    phase: Phase, state: ExchangeState, rules: tuple[Rule, ...], logged: list[Any]
) -> None:
    """Emit the events of the `log` steps the runner ran, `[(rule, step,
    metadata)]` in order, through the action's own code: before anything
    the engine does after the runner, the order the engine emits them in."""
    ctx = ActionContext(phase, state, ())
    for rule, step, metadata in logged:
        action = rules[rule].steps[step].action
        assert isinstance(action, Log), action
        ctx.rule = rules[rule].label
        action.tell(ctx, metadata)


class LazyActivation(dict[str, Any]):
    """The activation of a phase the engine resumes: a root is built when
    a program first reads it (what the runner did before needed none)."""

    __slots__ = ("ctx", "roots")

    def __init__(self, ctx: ActionContext, roots: dict[str, Callable[[ActionContext], Any]]):
        self.ctx = ctx
        self.roots = roots

    def __missing__(self, name: str) -> Any:
        value_of = self.roots.get(name)
        if value_of is None:
            raise KeyError(name)
        value = value_of(self.ctx)
        if value is ABSENT:
            raise KeyError(name)
        dict.__setitem__(self, name, value)
        return value


def resume_context(
    phase: Phase,
    state: ExchangeState,
    roots: Roots,
    *,
    request: RequestHead | None = None,
    response: ResponseHead | None = None,
    vars: dict[str, Any] | None = None,
) -> ActionContext:
    """The `ActionContext` the engine resumes the phase in, with the
    `vars` the runner's set-vars set."""
    ctx = ActionContext(phase, state, (), request=request, response=response)
    if vars is not None:
        ctx.vars = vars
    ctx.activation = LazyActivation(ctx, dict(roots))
    return ctx
