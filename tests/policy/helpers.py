"""Drive a compiled policy the way the proxy does, without sockets."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from edgeward.document import parse_document
from edgeward.hookdriver import drive_sync as drive
from edgeward.hooks import (
    CloseConnection,
    ConnectionInfo,
    Effect,
    EffectResult,
    EndpointInfo,
    Fetch,
    FetchResult,
    Forward,
    LocalResponse,
    Offload,
    PassResponse,
    ReadBody,
    ReadResponseBody,
    RequestHead,
    ResponseHead,
)
from edgeward.policy import CompiledPolicy, PolicyError, compile_policy
from edgeward.policy.events import ListSink, PolicyEvent

NOW = 1_700_000_000.0


def parse(text: str, file: str = "policy.yml") -> Any:
    return parse_document(textwrap.dedent(text), file)


@dataclass
class Harness:
    policy: CompiledPolicy
    sink: ListSink
    now: float = NOW

    @property
    def events(self) -> list[PolicyEvent]:
        return self.sink.events


def load(
    text: str, *, ip_policies: Mapping[str, Any] | None = None, body_limit: int | None = None
) -> Harness:
    sink = ListSink()
    box: list[Harness] = []
    policy = compile_policy(
        parse(text),
        ip_policies=ip_policies if ip_policies is not None else {},
        events=sink,
        body_limit=body_limit,
        clock=lambda: box[0].now,
    )
    box.append(Harness(policy, sink))
    return box[0]


def load_error(text: str, **kw: Any) -> PolicyError:
    try:
        load(text, **kw)
    except PolicyError as exc:
        return exc
    raise AssertionError("the policy loaded")


def conn(client_ip: str = "192.0.2.10") -> ConnectionInfo:
    return ConnectionInfo(
        id="c1",
        listener="public",
        client_ip=client_ip,
        client_port=50123,
        server_ip="127.0.0.1",
        server_port=443,
        started_at=NOW - 1,
    )


ENDPOINT = EndpointInfo(
    name="app",
    url="https://app.example.com",
    host="app.example.com",
    port=443,
    scheme="https",
    id="ep_app",
    upstream="http://127.0.0.1:8080",
)


@dataclass
class Result:
    """What the client got."""

    tcp_closed: bool = False
    request: Forward | LocalResponse | CloseConnection | None = None
    status: int | None = None
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    closed: bool = False
    effects: list[Effect] = field(default_factory=list)

    @property
    def forwarded(self) -> Forward | None:
        return self.request if isinstance(self.request, Forward) else None

    def header(self, name: str) -> list[str]:
        key = name.encode()
        return [v.decode() for n, v in self.headers if n == key]

    def upstream_header(self, name: str) -> list[str]:
        assert self.forwarded is not None
        key = name.encode()
        return [v.decode() for n, v in self.forwarded.head.headers if n == key]


def request(
    h: Harness,
    url: str = "/",
    *,
    method: str = "GET",
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    client_ip: str = "192.0.2.10",
    upstream_status: int = 200,
    upstream_headers: Sequence[tuple[str, str]] = (),
    fetch: Mapping[str, FetchResult] | None = None,
    http_version: bytes = b"1.1",
    upstream_body: bytes = b"upstream body",
) -> Result:
    """One exchange through the policy: tcp connect, request, response."""
    result = Result()
    c = conn(client_ip)
    if not h.policy.on_tcp_connect(c, ENDPOINT):
        result.tcp_closed = result.closed = True
        return result
    head = RequestHead(
        method=method.encode(),
        target=url.encode(),
        authority=b"app.example.com",
        scheme=b"https",
        headers=[(n.lower().encode(), v.encode()) for n, v in headers],
        http_version=http_version,
    )
    exchange = h.policy.begin(c, ENDPOINT, head, "req-1")
    response_body = [b""]

    def perform(effect: Effect) -> EffectResult:
        result.effects.append(effect)
        if isinstance(effect, ReadBody):
            return body if len(body) <= effect.limit else None
        if isinstance(effect, Offload):
            try:
                return effect.call()
            except Exception as exc:
                return exc
        if isinstance(effect, ReadResponseBody):
            whole = response_body[0]
            return whole[: effect.limit], len(whole) <= effect.limit
        if isinstance(effect, Fetch):
            return (fetch or {}).get(effect.url, FetchResult(0, error="no fixture"))
        raise AssertionError(effect)

    outcome = drive(exchange.on_http_request(head), perform)
    result.request = outcome
    if isinstance(outcome, CloseConnection):
        result.closed = True
        return result
    if isinstance(outcome, Forward):
        response = ResponseHead(
            upstream_status, [(n.encode(), v.encode()) for n, v in upstream_headers]
        )
        local_body = upstream_body
    else:
        response = ResponseHead(outcome.status, list(outcome.headers))
        local_body = outcome.body
    response_body[0] = local_body
    final = drive(exchange.on_http_response(response), perform)
    if isinstance(final, CloseConnection):
        result.closed = True
    elif isinstance(final, LocalResponse):
        result.status, result.headers, result.body = final.status, final.headers, final.body
    else:
        assert isinstance(final, PassResponse)
        result.status, result.headers, result.body = (
            final.head.status,
            final.head.headers,
            local_body,
        )
    return result


def one(action: str, config: str = "", *, phase: str = "on_http_request", rule: str = "") -> str:
    """A policy of one rule with one action: `one("deny", "status_code: 404")`."""
    body = f", config: {{{config}}}" if config else ""
    extra = f"{rule}, " if rule else ""
    return f"{phase}: [{{{extra}actions: [{{type: {action}{body}}}]}}]"


def secrets_get_compiles() -> bool:
    from edgeward import native
    from edgeward.policy.expressions import compile_expression
    from edgeward.policy.model import Phase

    try:
        compile_expression("secrets.get('vault', 'name') == ''", Phase.HTTP_REQUEST)
    except native.PolicyExprError:
        return False
    return True


# The native CEL (cel-rs) does not yet resolve `secrets.get(...)` when the
# `secrets` variable is declared, as the policy environment does; the Python
# twin does. Tests that need it are expected to fail only while that lasts.
needs_secrets_get = pytest.mark.xfail(
    not secrets_get_compiles(),
    reason="native CEL: secrets.get() with a declared `secrets` variable",
    strict=True,
)
