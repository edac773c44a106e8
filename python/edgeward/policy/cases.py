"""`edgeward policy test`: run recorded requests through a policy offline.

A cases file lists requests (method, url, headers, body, client ip, time;
the client ip defaults to `DEFAULT_CLIENT_IP`, 192.0.2.1),
optionally the upstream's answer for `on_http_response`, and an `expect`
block. Each case goes through the same engine and the same flow of its hooks
(`edgeward.hookdriver.HookFlow`) that the edge runs, with the body and
fetch effects answered from the case, and reports which rules matched, what
each action did and the final answer.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from edgeward.document import SourceDocument
from edgeward.errors import ConfigError, Location
from edgeward.hookdriver import HookFlow, drive_sync, filter_whole
from edgeward.hooks import (
    CloseConnection,
    ConnectionInfo,
    Effect,
    EffectResult,
    EndpointInfo,
    ExchangeSummary,
    Fetch,
    FetchResult,
    FindInternal,
    Forward,
    ForwardInternal,
    Header,
    LocalResponse,
    Offload,
    ReadBody,
    ReadResponseBody,
    RequestHead,
    ResponseHead,
)
from edgeward.policy.context import TraceEntry
from edgeward.policy.engine import CompiledPolicy
from edgeward.policy.events import PolicyEvent

# The client address of a case that names none: TEST-NET-1 (RFC 5737), an
# address no real client has, so no allow list matches it by accident.
DEFAULT_CLIENT_IP = "192.0.2.1"

_CASE_KEYS = frozenset({"name", "request", "response", "expect", "fetch"})
_REQUEST_KEYS = frozenset({"method", "url", "headers", "body", "client_ip", "client_port", "time"})
_RESPONSE_KEYS = frozenset({"status", "headers", "body"})
_EXPECT_KEYS = frozenset(
    {
        "status",
        "forwarded",
        "forwarded_internal",
        "closed",
        "headers",
        "body",
        "error_code",
        "rules",
        "upstream_url",
        "upstream_headers",
        "upstream_headers_absent",
        "headers_absent",
    }
)


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    location: Location
    method: str
    url: str
    headers: list[Header]
    body: bytes
    client_ip: str
    client_port: int
    time: float
    response_status: int
    response_headers: list[Header]
    response_body: bytes
    fetch: Mapping[str, FetchResult]
    expect: Mapping[str, Any]


@dataclass(slots=True)
class Outcome:
    """What the client got, and what happened on the way."""

    trace: list[TraceEntry] = field(default_factory=list)
    events: list[PolicyEvent] = field(default_factory=list)
    closed: bool = False
    forwarded: RequestHead | None = None
    forwarded_body: bytes | None = None
    forwarded_internal: str | None = None  # forward-internal's url (offline: always found)
    status: int | None = None
    headers: list[Header] = field(default_factory=list)
    body: bytes = b""
    error_code: str | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


class CasesError(ConfigError):
    """A malformed cases file."""


def read_cases(
    document: SourceDocument, *, client_ip: str = DEFAULT_CLIENT_IP
) -> tuple[list[Case], dict[str, Any]]:
    """The cases of a parsed cases file, and its `ip_policies` (name ->
    {allow, deny}). `client_ip` is the address of cases whose request
    names none."""
    data = document.data
    if not isinstance(data, Mapping) or not isinstance(data.get("cases"), list):
        raise CasesError("a cases file is a mapping with a 'cases' list", document.locate(()))
    for key in data:
        if key not in ("cases", "ip_policies"):
            raise CasesError(f"unknown key {key!r} (cases, ip_policies)", document.locate((key,)))
    ip_policies = _ip_policies(document, data.get("ip_policies") or {})
    cases = [_case(document, i, raw, client_ip) for i, raw in enumerate(data["cases"])]
    return cases, ip_policies


@dataclass(frozen=True, slots=True)
class _NamedIpPolicy:
    name: str
    allow: tuple[str, ...]
    deny: tuple[str, ...]


def _ip_policies(document: SourceDocument, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise CasesError(
            "ip_policies is a mapping of names to {allow, deny}", document.locate(("ip_policies",))
        )
    out: dict[str, Any] = {}
    for name, spec in raw.items():
        where = document.locate(("ip_policies", name))
        if not isinstance(spec, Mapping) or set(spec) - {"allow", "deny"}:
            raise CasesError("an IP policy has 'allow' and/or 'deny' lists of CIDRs", where)
        out[name] = _NamedIpPolicy(
            name, tuple(map(str, spec.get("allow") or ())), tuple(map(str, spec.get("deny") or ()))
        )
    return out


def _case(document: SourceDocument, index: int, raw: Any, client_ip: str) -> Case:
    path: tuple[str | int, ...] = ("cases", index)
    where = document.locate(path)
    if not isinstance(raw, Mapping):
        raise CasesError("a case is a mapping (name, request, response, expect)", where)
    _only(document, path, raw, _CASE_KEYS)
    request = raw.get("request")
    if not isinstance(request, Mapping) or "url" not in request:
        raise CasesError("a case needs a 'request' with at least a 'url'", where)
    _only(document, (*path, "request"), request, _REQUEST_KEYS)
    response = raw.get("response") or {}
    _only(document, (*path, "response"), response, _RESPONSE_KEYS)
    expect = raw.get("expect") or {}
    _only(document, (*path, "expect"), expect, _EXPECT_KEYS)
    url = str(request["url"])
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CasesError(
            f"request url must be absolute http(s), not {url!r}",
            document.locate((*path, "request", "url")),
        )
    fetch = {
        str(u): FetchResult(
            int(r.get("status", 200)),
            tuple(
                (n.decode("latin-1"), v.decode("utf-8"))
                for n, v in _headers(r.get("headers"), document, (*path, "fetch", u))
            ),
            _bytes(r.get("body")),
        )
        for u, r in (raw.get("fetch") or {}).items()
    }
    return Case(
        name=str(raw.get("name") or f"case {index + 1}"),
        location=where,
        method=str(request.get("method", "GET")).upper(),
        url=url,
        headers=_headers(request.get("headers"), document, (*path, "request", "headers")),
        body=_bytes(request.get("body")),
        client_ip=_client_ip(request.get("client_ip", client_ip), document, (*path, "request")),
        client_port=int(request.get("client_port", 50000)),
        time=_time(request.get("time"), document, (*path, "request", "time")),
        response_status=int(response.get("status", 200)),
        response_headers=_headers(
            response.get("headers"), document, (*path, "response", "headers")
        ),
        response_body=_bytes(response.get("body")),
        fetch=fetch,
        expect=expect,
    )


def _only(
    document: SourceDocument, path: tuple[str | int, ...], raw: Any, keys: frozenset[str]
) -> None:
    if not isinstance(raw, Mapping):
        raise CasesError("must be a mapping", document.locate(path))
    for key in raw:
        if key not in keys:
            raise CasesError(
                f"unknown key {key!r} (known: {', '.join(sorted(keys))})",
                document.locate((*path, key)),
            )


def _headers(raw: Any, document: SourceDocument, path: tuple[str | int, ...]) -> list[Header]:
    """Headers as a mapping (a value may be a list) or a list of pairs."""
    if raw is None:
        return []
    pairs: list[tuple[Any, Any]] = []
    if isinstance(raw, Mapping):
        for name, value in raw.items():
            values = value if isinstance(value, list) else [value]
            pairs += [(name, v) for v in values]
    elif isinstance(raw, list) and all(isinstance(p, list) and len(p) == 2 for p in raw):
        pairs = [(p[0], p[1]) for p in raw]
    else:
        raise CasesError(
            "headers are a mapping or a list of [name, value] pairs", document.locate(path)
        )
    return [(str(n).lower().encode("latin-1"), str(v).encode("utf-8")) for n, v in pairs]


def _client_ip(raw: Any, document: SourceDocument, path: tuple[str | int, ...]) -> str:
    try:
        return str(ipaddress.ip_address(str(raw)))
    except ValueError:
        raise CasesError(
            f"client_ip must be an IP address, not {raw!r}",
            document.locate((*path, "client_ip")),
        ) from None


def _bytes(raw: Any) -> bytes:
    if raw is None:
        return b""
    return raw if isinstance(raw, bytes) else str(raw).encode("utf-8")


def _time(raw: Any, document: SourceDocument, path: tuple[str | int, ...]) -> float:
    if raw is None:
        return 1_700_000_000.0  # fixed, so cases are reproducible
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    if isinstance(raw, datetime):
        return raw.timestamp()
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise CasesError(
            f"time must be RFC 3339 or unix seconds, not {raw!r}", document.locate(path)
        ) from None


# --- running ----------------------------------------------------------------------


class CaseClock:
    """The clock the policy reads: the case's recorded time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


_ids = itertools.count(1)
UPSTREAM = "http://upstream.test"  # the endpoint's upstream, as a case sees it


def run_case(
    policy: CompiledPolicy,
    case: Case,
    clock: CaseClock,
    events: list[PolicyEvent],
    *,
    trace: bool = True,
) -> Outcome:
    """Run one case. Without `trace` no rule records what it did (as at the
    edge: `edgeward bench policy` times cases so), and the outcome's `rules`
    expectation cannot hold."""
    clock.now = case.time
    first_event = len(events)
    out = Outcome()
    parts = urlsplit(case.url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    conn = ConnectionInfo(
        id=f"test-{next(_ids)}",
        listener="test",
        client_ip=case.client_ip,
        client_port=case.client_port,
        server_ip="127.0.0.1",
        server_port=port,
        started_at=case.time,
    )
    endpoint = EndpointInfo(
        name="test",
        url=f"{parts.scheme}://{parts.netloc}",
        host=parts.hostname or "",
        port=port,
        scheme=parts.scheme,
        id="ep_test",
        upstream=UPSTREAM,
    )
    if policy.connect(conn, endpoint, out.trace if trace else None) is not None:
        out.closed = True
    else:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = RequestHead(
            method=case.method.encode(),
            target=target.encode("utf-8"),
            authority=parts.netloc.encode("utf-8"),
            scheme=parts.scheme.encode(),
            headers=list(case.headers),
            http_version=b"1.1",
        )
        exchange = policy.begin(conn, endpoint, head, f"req-{conn.id}")
        if trace:
            exchange.trace = out.trace
        _exchange(HookFlow(exchange), head, case, out)
    out.events = events[first_event:]
    out.failures = check(case, out)
    return out


def _exchange(flow: HookFlow, head: RequestHead, case: Case, out: Outcome) -> None:
    """The exchange as `ProxyExchange` runs it (the same `HookFlow`), with
    the case in place of the client and the upstream."""
    perform = functools.partial(_perform, case=case)
    outcome = drive_sync(flow.request(head), perform)
    while isinstance(outcome, ForwardInternal):  # offline, every internal endpoint is
        out.forwarded_internal = outcome.url  # online and has no policy
        outcome = drive_sync(flow.enter(outcome, None), perform)
    response: ResponseHead | None = None
    body = b""
    if isinstance(outcome, Forward):
        out.forwarded = outcome.head
        out.forwarded_body, stream_filter = flow.request_body(outcome, None)
        if stream_filter is not None:  # request-body-find-replace on the streamed body
            out.forwarded_body = filter_whole(stream_filter, case.body)
        response = ResponseHead(case.response_status, list(case.response_headers))
        body = case.response_body
    elif isinstance(outcome, LocalResponse):
        response = flow.answer_head(outcome)
        body = outcome.body
        out.error_code = outcome.error_code
    else:
        out.closed = True
    if response is not None:
        perform = functools.partial(_perform, case=case, response_body=body)
        final = drive_sync(flow.response(response), perform)
        if isinstance(final, LocalResponse):
            out.status, out.headers, out.body = (
                final.status,
                flow.answer_head(final).headers,
                final.body,
            )
            out.error_code = final.error_code or out.error_code
        elif isinstance(final, CloseConnection):
            out.closed = True
        else:
            if final.body_filter is not None:  # compress-response, find-replace, SSE
                body = filter_whole(final.body_filter, body)
            passed = flow.passed_head(final)
            out.status, out.headers, out.body = passed.status, passed.headers, body
    flow.complete(
        ExchangeSummary(
            out.status or 0,
            len(case.body),
            len(out.body),
            0.0,
            UPSTREAM if out.forwarded is not None else None,
            out.error_code,
        )
    )


def _perform(effect: Effect, case: Case, response_body: bytes = b"") -> EffectResult:
    """The effects answered from the case: the request body, the upstream's
    response body, the `fetch` fixtures; offline, every internal endpoint
    is online and an `Offload` runs in this thread."""
    if isinstance(effect, ReadBody):
        return case.body if len(case.body) <= effect.limit else None
    if isinstance(effect, Offload):  # offline: in this thread
        try:
            return effect.call()
        except Exception as exc:
            return exc
    if isinstance(effect, ReadResponseBody):
        return response_body[: effect.limit], len(response_body) <= effect.limit
    if isinstance(effect, Fetch):
        return case.fetch.get(
            effect.url, FetchResult(0, error=f"offline: no fetch fixture for {effect.url}")
        )
    if isinstance(effect, FindInternal):
        return None  # offline, every internal endpoint is online
    raise TypeError(f"unknown effect {effect!r}")


# --- expectations --------------------------------------------------------------------


def _header_values(headers: Sequence[Header], name: str) -> list[str]:
    key = name.lower().encode("latin-1")
    return [v.decode("utf-8", "replace") for n, v in headers if n.lower() == key]


def check(case: Case, out: Outcome) -> list[str]:
    exp = case.expect
    failures: list[str] = []

    def compare(what: str, expected: Any, actual: Any) -> None:
        if expected != actual:
            failures.append(f"{what}: expected {expected!r}, got {actual!r}")

    if "closed" in exp:
        compare("closed", bool(exp["closed"]), out.closed)
    if "forwarded" in exp:
        compare("forwarded", bool(exp["forwarded"]), out.forwarded is not None)
    if "forwarded_internal" in exp:
        compare("forwarded_internal", exp["forwarded_internal"], out.forwarded_internal)
    if "status" in exp:
        compare("status", int(exp["status"]), out.status)
    if "error_code" in exp:
        compare("error_code", exp["error_code"], out.error_code)
    if "body" in exp:
        compare("body", str(exp["body"]), out.body.decode("utf-8", "replace"))
    for name, value in (exp.get("headers") or {}).items():
        expected = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        compare(f"response header {name}", expected, _header_values(out.headers, name))
    for name in exp.get("headers_absent") or ():
        compare(f"response header {name}", [], _header_values(out.headers, name))
    fwd = out.forwarded
    if "upstream_url" in exp:
        url = None
        if fwd is not None:
            url = f"{fwd.scheme.decode()}://{fwd.authority.decode()}{fwd.target.decode()}"
        compare("upstream url", exp["upstream_url"], url)
    for name, value in (exp.get("upstream_headers") or {}).items():
        expected = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        compare(
            f"upstream header {name}", expected, _header_values(fwd.headers if fwd else [], name)
        )
    for name in exp.get("upstream_headers_absent") or ():
        compare(f"upstream header {name}", [], _header_values(fwd.headers if fwd else [], name))
    if "rules" in exp:
        matched = [t.rule for t in out.trace if t.action is None and t.outcome == "matched"]
        compare("matched rules", [str(r) for r in exp["rules"]], matched)
    return failures
