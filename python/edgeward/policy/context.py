"""Per-request state: the CEL activation and what actions see.

`Exchange`-wide state (`ExchangeState`) lives from `begin` to `on_complete`:
the connection, the request as received, action results, a buffered body.
Each phase run gets an `Activation` (the CEL variables, built lazily and once)
and an `ActionContext` (what an action may read and change).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

from edgeward import native
from edgeward.hooks import (
    BodyFilter,
    ConnectionInfo,
    Effect,
    EffectResult,
    EndpointInfo,
    Fetch,
    FetchResult,
    ReadBody,
    RequestHead,
    ResponseHead,
)
from edgeward.policy.errors import ActionError, ErrorCode
from edgeward.policy.events import EventSink, PolicyEvent
from edgeward.policy.model import Phase
from edgeward.policy.variables import (
    ABSENT,
    LazyMap,
    conn_values,
    endpoint_values,
    request_values,
    response_values,
    rfc3339,
)


@dataclass(frozen=True, slots=True)
class TraceEntry:
    """What happened to one rule or action, for `policy test`."""

    phase: Phase
    rule: str
    action: str | None  # None: the rule's expressions
    outcome: str  # "matched", "not matched", "ran", "deny 403", "error: ..."
    results: Mapping[str, Any] | None = None


class ExchangeState:
    """What one exchange (or one connection, for `on_tcp_connect`) carries
    from phase to phase."""

    __slots__ = (
        "_conn_values",
        "_endpoint_values",
        "_req_values",
        "body",
        "body_limit",
        "clock",
        "conn",
        "endpoint",
        "events",
        "received",
        "received_at",
        "request_id",
        "results",
        "secrets",
        "trace",
    )

    def __init__(
        self,
        conn: ConnectionInfo,
        endpoint: EndpointInfo | None,
        request_id: str | None,
        *,
        clock: Callable[[], float],
        events: EventSink,
        body_limit: int,
        secrets: Mapping[str, Mapping[str, str]],
    ) -> None:
        self.conn = conn
        self.endpoint = endpoint
        self.request_id = request_id
        self.clock = clock
        self.events = events
        self.body_limit = body_limit
        self.secrets = secrets  # for `secrets.get(vault, name)`
        self.received: RequestHead | None = None  # the request as the client sent it
        self.received_at = 0.0
        self.body: bytes | None = None  # the request body, once an action read it
        self.results: dict[str, dict[str, Any]] = {"ngrok": {}}
        self.trace: list[TraceEntry] | None = None  # filled when a caller asks (policy test)
        self._conn_values: LazyMap | None = None
        self._req_values: LazyMap | None = None
        self._endpoint_values: LazyMap | None = None

    def conn_values(self) -> LazyMap:
        if self._conn_values is None:
            self._conn_values = conn_values(self.conn)
        return self._conn_values

    def req_values(self) -> LazyMap:
        if self._req_values is None:
            assert self.received is not None
            self._req_values = request_values(self.received, self.received_at)
        return self._req_values

    def endpoint_values(self) -> LazyMap:
        if self._endpoint_values is None:
            assert self.endpoint is not None
            self._endpoint_values = endpoint_values(self.endpoint)
        return self._endpoint_values


def _req(a: Activation) -> Any:
    return a.state.req_values() if a.state.received is not None else ABSENT


def _endpoint(a: Activation) -> Any:
    return a.state.endpoint_values() if a.state.endpoint is not None else ABSENT


def _res(a: Activation) -> Any:
    return ABSENT if a.status is None else response_values(a.status, a.headers)


class Activation(LazyMap):
    """The CEL variables of one phase run: `conn`, `req`, `res`, `endpoint`,
    `time`, `secrets` built on first access; `actions` and `vars` live."""

    __slots__ = ("headers", "state", "status", "vars")

    def __init__(self, state: ExchangeState, response: ResponseHead | None) -> None:
        super().__init__(self, _ACTIVATION_FIELDS)
        self.state = state
        self.status = response.status if response is not None else None
        # `res.*` shows the response as it reached the phase.
        self.headers = list(response.headers) if response is not None else []
        self.vars: dict[str, Any] = {}
        dict.__setitem__(self, "vars", self.vars)
        dict.__setitem__(self, "actions", state.results)


_ACTIVATION_FIELDS: dict[str, Callable[[Activation], Any]] = {
    "req": _req,
    "conn": lambda a: a.state.conn_values(),
    "endpoint": _endpoint,
    "res": _res,
    "time": lambda a: {"now": rfc3339(a.state.clock())},
    "secrets": lambda a: a.state.secrets,
}


class ActionContext:
    """What an action sees while it runs in one phase of one exchange."""

    __slots__ = ("activation", "body_filter", "phase", "request", "response", "rule", "state")

    def __init__(
        self,
        phase: Phase,
        state: ExchangeState,
        *,
        request: RequestHead | None = None,
        response: ResponseHead | None = None,
    ) -> None:
        self.phase = phase
        self.state = state
        self.request = request  # what will be forwarded; actions may change it
        self.response = response  # what the client will get; actions may change it
        self.activation = Activation(state, response)
        self.rule = ""  # label of the running rule, for events
        # Set by a response action that transforms the body as it streams
        # (compress-response); the proxy then frames the body itself.
        self.body_filter: BodyFilter | None = None

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
        return self.state.clock()

    def evaluate(self, program: native.Program) -> Any:
        """Raises `native.EvalError`; the engine fails closed on it."""
        return program.evaluate(self.activation)

    def render(self, template: native.Template) -> str:
        """Raises `native.EvalError`; the engine fails closed on it."""
        return template.render(self.activation)

    def render_header_value(self, template: native.Template, name: str) -> bytes:
        """An interpolated header value; CR, LF or NUL in it is an error,
        never a header injection."""
        value = self.render(template)
        if "\r" in value or "\n" in value or "\0" in value:
            raise ActionError(
                ErrorCode.ACTION_FAILED, f"interpolated value of header {name!r} contains CR/LF/NUL"
            )
        return value.encode("utf-8")

    # --- writing ---------------------------------------------------------------

    def record(self, key: str, values: Mapping[str, Any]) -> None:
        """Set `actions.ngrok.<key>` (replacing an earlier run's values)."""
        self.state.results["ngrok"][key] = values

    def set_var(self, name: str, value: Any) -> None:
        self.activation.vars[name] = value

    def emit(self, action: str | None, verdict: str, reason: str, **extra: Any) -> None:
        self.state.events.emit(
            PolicyEvent(
                time=self.now(),
                endpoint=self.state.endpoint.name if self.state.endpoint else None,
                phase=self.phase.value,
                rule=self.rule,
                action=action,
                verdict=verdict,
                reason=reason,
                client_ip=self.state.conn.client_ip,
                request_id=self.state.request_id,
                **extra,
            )
        )

    # --- effects ---------------------------------------------------------------

    def read_body(self) -> Generator[Effect, EffectResult, bytes | None]:
        """The whole request body (at most the engine's body limit), read
        once per exchange; None when it is larger. The proxy then forwards
        exactly these bytes."""
        if self.state.body is None:
            result = yield ReadBody(self.state.body_limit)
            if result is None:
                return None
            if not isinstance(result, bytes):
                raise TypeError(f"ReadBody answered with {type(result).__name__}")
            self.state.body = result
        return self.state.body

    def fetch(self, request: Fetch) -> Generator[Effect, EffectResult, FetchResult]:
        result = yield request
        if not isinstance(result, FetchResult):
            raise TypeError(f"Fetch answered with {type(result).__name__}")
        return result


def default_clock() -> float:
    return time.time()
