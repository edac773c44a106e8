"""Per-request state: the CEL activation and what actions see.

`ExchangeState` lives from `begin` to `on_complete` (or for one
`on_tcp_connect`): the connection, the request as received, action results,
a buffered body. Each phase run gets an `ActionContext` (what an action may
read and change) with its activation: the CEL variables the phase's programs
read, built once, as plain dicts (see `Variables`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Generator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from edgeward import native
from edgeward.hooks import (
    BodyFilter,
    ConnectionInfo,
    Effect,
    EffectResult,
    EndpointInfo,
    ExchangeSummary,
    Fetch,
    FetchResult,
    Offload,
    ReadBody,
    ReadResponseBody,
    RequestHead,
    ResponseHead,
    TerminateTls,
    TlsTerminated,
)
from edgeward.ipintel import EMPTY as NO_IP_INTELLIGENCE
from edgeward.ipintel import IpIntelligence
from edgeward.policy.config import redact_value
from edgeward.policy.errors import ActionError, ErrorCode
from edgeward.policy.events import PolicyEvent
from edgeward.policy.expressions import Renderable
from edgeward.policy.model import Phase
from edgeward.policy.sse import Message
from edgeward.policy.useragent import prepare as prepare_user_agents
from edgeward.policy.variables import (
    ABSENT,
    ENDPOINT_FIELDS,
    LIVE_CONN_FIELDS,
    REQUEST_FIELDS,
    RESPONSE_FIELDS,
    LazyMap,
    RequestSource,
    ResponseSource,
    conn_fields,
    rfc3339,
    shape_of,
    shaped,
)

T = TypeVar("T")

if TYPE_CHECKING:
    from edgeward.policy.engine import CompiledPolicy


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """What happened to one rule or action, for `policy test`."""

    phase: Phase
    rule: str
    action: str | None  # None: the rule's expressions
    outcome: str  # "matched", "not matched", "ran", "deny 403", "error: ..."
    results: Mapping[str, Any] | None = None


class Variables:
    """How one policy builds its activations, from the references of all
    its CEL programs and templates (by phase).

    A phase's activation holds only the root variables its programs read.
    `conn`, `req` and `endpoint` are the same in every phase of an exchange,
    so each is built once per exchange with the fields any phase reads
    (`conn.bytes_in`/`bytes_out` are read again at each phase: `live`);
    `res`, `time` and `vars` belong to the phase run."""

    __slots__ = ("conn", "endpoint", "live", "reads_results", "req", "res", "roots")

    def __init__(
        self,
        references: Mapping[Phase, Collection[str]],
        ip_intelligence: IpIntelligence = NO_IP_INTELLIGENCE,
    ) -> None:
        every = shape_of(ref for refs in references.values() for ref in refs)
        fields = conn_fields(ip_intelligence)
        conn_shape = every.get("conn", {})
        self.req = shaped(REQUEST_FIELDS, every.get("req", {}))
        self.conn = shaped(fields, conn_shape)
        self.endpoint = shaped(ENDPOINT_FIELDS, every.get("endpoint", {}))
        self.res = shaped(RESPONSE_FIELDS, every.get("res", {}))
        self.roots = {
            phase: tuple(_ROOTS[name] for name in sorted(shape_of(refs)))
            for phase, refs in references.items()
        }
        self.reads_results = "actions" in every  # else results are kept for `policy test` only
        # conn fields that change during the exchange, rebuilt each phase
        self.live: tuple[tuple[str, Callable[[ConnectionInfo], Any]], ...] = tuple(
            (name, fields[name])  # type: ignore[misc]
            for name in LIVE_CONN_FIELDS
            if conn_shape is not None and name in conn_shape
        )
        req = every.get("req", {})
        agent = {} if req is None else req.get("user_agent", {})
        if req is None or (agent and set(agent) - {""}):
            prepare_user_agents()  # at load, not at the first request that parses one


def _res(ctx: ActionContext) -> Any:
    # `res.*` shows the response as it reached the phase: built now, before
    # an action changes it.
    response = ctx.response
    if response is None:
        return ABSENT
    return ctx.state.policy.variables.res(ResponseSource(response.status, response.headers))


TIME_FIELDS = {"now": lambda clock: rfc3339(clock())}  # the clock at first use in the phase
Completion = Callable[[ExchangeSummary, float], None]
"""Told how an exchange ended, and when (`ActionContext.on_complete`)."""
Roots = tuple[tuple[str, Callable[["ActionContext"], Any]], ...]
"""The variables of a phase's activation and how to get each."""

_ROOTS: dict[str, tuple[str, Callable[[ActionContext], Any]]] = {
    name: (name, value_of)
    for name, value_of in (
        ("req", lambda ctx: ctx.state.req_values()),
        ("conn", lambda ctx: ctx.state.conn_values()),
        ("endpoint", lambda ctx: ctx.state.endpoint_values()),
        ("res", _res),
        ("time", lambda ctx: LazyMap(ctx.state.policy.clock, TIME_FIELDS)),
        ("actions", lambda ctx: ctx.state.results),
        ("vars", lambda ctx: ctx.vars),
        ("sse", lambda ctx: ABSENT if ctx.message is None else ctx.message.values()),
    )
}


class ExchangeState:
    """What one exchange (or one connection, for `on_tcp_connect`) carries
    from phase to phase."""

    __slots__ = (
        "_conn",
        "_endpoint",
        "_req",
        "body",
        "body_received_at",
        "completions",
        "conn",
        "endpoint",
        "policy",
        "received",
        "received_at",
        "request_id",
        "results",
        "trace",
    )

    def __init__(
        self,
        policy: CompiledPolicy,
        conn: ConnectionInfo,
        endpoint: EndpointInfo | None,
        request_id: str | None,
        results: dict[str, Any] | None = None,
    ) -> None:
        self.policy = policy
        self.conn = conn
        self.endpoint = endpoint
        self.request_id = request_id
        self.received: RequestHead | None = None  # the request as the client sent it
        self.received_at = 0.0
        self.body: bytes | None = None  # the request body, once an action read it
        self.body_received_at: float | None = None  # when it was (`req.ts.body_received`)
        # `actions.ngrok.*`: what actions did (and on_tcp_connect's, carried over).
        self.results: dict[str, dict[str, Any]] = {"ngrok": results or {}}
        self.trace: list[TraceEntry] | None = None  # filled when a caller asks (policy test)
        # What actions want to hear when the exchange completes (circuit-breaker).
        self.completions: list[Completion] | None = None
        self._conn: Any = None
        self._req: Any = None
        self._endpoint: Any = None

    def conn_values(self) -> Any:
        if self._conn is None:
            self._conn = self.policy.variables.conn(self.conn)
        else:
            for name, build in self.policy.variables.live:  # as of this phase
                self._conn[name] = build(self.conn)
        return self._conn

    def req_values(self) -> Any:
        if self._req is None:
            if self.received is None:
                return ABSENT
            source = RequestSource(self.received, self.received_at, self._body_received)
            self._req = self.policy.variables.req(source)
        return self._req

    def _body_received(self) -> float | None:
        return self.body_received_at

    def endpoint_values(self) -> Any:
        if self._endpoint is None:
            if self.endpoint is None:
                return ABSENT
            self._endpoint = self.policy.variables.endpoint(self.endpoint)
        return self._endpoint


class ActionContext:
    """What an action sees while it runs in one phase of one exchange."""

    __slots__ = (
        "activation",
        "body_filter",
        "message",
        "phase",
        "records",
        "request",
        "response",
        "rule",
        "state",
        "vars",
    )

    def __init__(
        self,
        phase: Phase,
        state: ExchangeState,
        roots: Roots,
        *,
        request: RequestHead | None = None,
        response: ResponseHead | None = None,
        message: Message | None = None,
    ) -> None:
        self.phase = phase
        self.state = state
        self.request = request  # what will be forwarded; actions may change it
        self.response = response  # what the client will get; actions may change it
        self.message = message  # on_event_stream_message: the message; actions may change it
        self.rule = ""  # label of the running rule, for events
        # Set by an action that transforms the body as it streams
        # (compress-response, the find-replace actions: actions/_body.py);
        # the proxy then frames the body itself.
        self.body_filter: BodyFilter | None = None
        self.vars: dict[str, Any] = {}  # `vars.*`: this phase's only
        # Whether actions record `actions.ngrok.*`: only when a program
        # reads them, or `policy test` shows them.
        self.records = state.policy.variables.reads_results or state.trace is not None
        self.activation: dict[str, Any] = {}
        for name, value_of in roots:
            value = value_of(self)
            if value is not ABSENT:
                self.activation[name] = value

    # --- reading --------------------------------------------------------------

    @property
    def conn(self) -> ConnectionInfo:
        return self.state.conn

    @property
    def endpoint(self) -> EndpointInfo | None:
        return self.state.endpoint

    @property
    def request_id(self) -> str | None:
        return self.state.request_id

    @property
    def received(self) -> RequestHead | None:
        """The request as the client sent it (unchanged by actions)."""
        return self.state.received

    def now(self) -> float:
        return self.state.policy.clock()

    def evaluate(self, program: native.Program) -> Any:
        """Raises `native.EvalError`; the engine fails closed on it."""
        return program.evaluate(self.activation)

    def render(self, template: Renderable) -> str:
        """Raises `native.EvalError`; the engine fails closed on it."""
        return template.render(self.activation)

    def render_header_value(self, template: native.Template, name: str) -> bytes:
        """An interpolated header value; CR, LF or NUL in it is an error,
        never a header injection."""
        value = template.render(self.activation)
        if "\r" in value or "\n" in value or "\0" in value:
            raise ActionError(
                ErrorCode.ACTION_FAILED, f"interpolated value of header {name!r} contains CR/LF/NUL"
            )
        return value.encode("utf-8")

    # --- writing ---------------------------------------------------------------

    def record(self, key: str, values: Mapping[str, Any]) -> None:
        """Set `actions.ngrok.<key>` (replacing an earlier run's values).
        Actions whose results cost something to build test `records` first."""
        if self.records:
            self.state.results["ngrok"][key] = values

    def on_complete(self, callback: Completion) -> None:
        """Call `callback(summary, now)` once the exchange has completed
        (`ExchangeHooks.on_complete`): how it ended, as the client saw it."""
        if self.state.completions is None:
            self.state.completions = []
        self.state.completions.append(callback)

    def set_var(self, name: str, value: Any) -> None:
        self.vars[name] = value

    def emit(self, action: str | None, verdict: str, reason: str, **extra: Any) -> None:
        state = self.state
        redact = state.policy.redact
        reason = redact(reason)
        if "metadata" in extra:  # a `log` action's: it may interpolate a secret
            extra["metadata"] = redact_value(extra["metadata"], redact)
        state.policy.events.emit(
            PolicyEvent(
                time=self.now(),
                endpoint=state.endpoint.name if state.endpoint else None,
                phase=self.phase.value,
                rule=self.rule,
                action=action,
                verdict=verdict,
                reason=reason,
                client_ip=state.conn.client_ip,
                request_id=state.request_id,
                **extra,
            )
        )

    # --- effects ---------------------------------------------------------------

    def read_body(self) -> Generator[Effect, EffectResult, bytes | None]:
        """The whole request body (at most the engine's body limit), read
        once per exchange; None when it is larger. The proxy then forwards
        exactly these bytes."""
        if self.state.body is None:
            result = yield ReadBody(self.state.policy.body_limit)
            if result is None:
                return None
            if not isinstance(result, bytes):
                raise TypeError(f"ReadBody answered with {type(result).__name__}")
            self.state.body = result
            self.state.body_received_at = self.now()
        return self.state.body

    def offload(self, call: Callable[[], T]) -> Generator[Effect, EffectResult, T]:
        """`call()` run by the driver in a worker thread (CPU-bound work that
        would hold the event loop); what it raises is raised here."""
        result = yield Offload(call)
        if isinstance(result, BaseException):
            raise result
        return result  # type: ignore[return-value]

    def read_response_body(self, limit: int) -> Generator[Effect, EffectResult, tuple[bytes, bool]]:
        """The first `limit` bytes of the response body and whether that is
        all of it (response phase); the body is still forwarded whole."""
        result = yield ReadResponseBody(limit)
        if not isinstance(result, tuple):
            raise TypeError(f"ReadResponseBody answered with {type(result).__name__}")
        return result

    def terminate_tls(
        self, request: TerminateTls
    ) -> Generator[Effect, EffectResult, TlsTerminated]:
        """Terminate the connection's TLS (on_tcp_connect); once done,
        `conn.tls.*` shows the handshake to the rest of the phase."""
        result = yield request
        if not isinstance(result, TlsTerminated):
            raise TypeError(f"TerminateTls answered with {type(result).__name__}")
        if result.info is not None and not result.by_listener:
            self.state._conn = None  # conn.* is built again, with conn.tls
            if "conn" in self.activation:
                self.activation["conn"] = self.state.conn_values()
        return result

    def fetch(self, request: Fetch) -> Generator[Effect, EffectResult, FetchResult]:
        result = yield request
        if not isinstance(result, FetchResult):
            raise TypeError(f"Fetch answered with {type(result).__name__}")
        return result
