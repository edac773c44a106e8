"""`http-request`: call another HTTP service from a policy (§3.17), and
expose its answer to later rules as `actions.ngrok.http_request.*`.

The request (`url`, `method`, `query_params`, `headers`, `body`, all but
the method interpolated; interpolated values in `url` are percent-encoded)
is made by the proxy through the `Fetch` effect, one at a time:

- targets: internal endpoints (`https://NAME.internal[:port]/path`, in
  edge.yml or bound by an agent), which the proxy serves itself as a
  sub-exchange on that endpoint (its policy, then its upstream or agent;
  never DNS), sharing forward-internal's loop check and hop limit (unknown
  or offline: `ERR_EDGEWARD_3607`; a loop: `ERR_EDGEWARD_3603`); external
  URLs only when the edge config allows them (`http_request.allow_external`,
  `edgeward.policy.targets`), checked for the URL, every redirect and the
  address the host resolves to;
- `max_redirects` (default 0: a 3xx is the answer) redirects are followed,
  each a new checked request; 303, and 301/302 after a POST, become a GET;
- the response body is capped at 256 KiB (`ERR_EDGEWARD_3601`);
- `timeout` (default 3s) covers everything, retries and redirects included
  (`ERR_EDGEWARD_3602`);
- after each attempt `retry_condition` (CEL, default false; `attempts` and
  `last_attempt.{req,res,error}`) may ask for another, at most 3 retries,
  made at once;
- a request carries `edgeward-hops`, one more than the request being
  handled: past 3 hops (a policy calling its own edge in a loop) it is
  refused (`ERR_EDGEWARD_3603`).

A failure (no answer; a 5xx is an answer) is recorded under `.error` and the
policy goes on (`on_error: continue`, the default), or fails the request
(`on_error: halt`: 502, 504 for a timeout, 508 for a loop). Events name the
URL's host and the failure, never a header or the body.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import quote, urlencode, urljoin, urlsplit

from edgeward import native
from edgeward.expr.policy_env import HTTP_REQUEST_RETRY_VARIABLES
from edgeward.hooks import Effect, EffectResult, Fetch, FetchResult
from edgeward.policy.actions._http import FRAMING_HEADERS
from edgeward.policy.actions.base import (
    Action,
    ActionContext,
    ActionError,
    CompileScope,
    ConfigReader,
    Decision,
    ErrorCode,
    Phase,
)
from edgeward.policy.expressions import Renderable
from edgeward.policy.targets import ExternalTargets

METHODS = ("GET", "PUT", "POST", "PATCH", "DELETE", "OPTIONS")
MAX_RESPONSE_BYTES = 256 * 1024
MAX_RETRIES = 3
MAX_HOPS = 3
HOPS_HEADER = "edgeward-hops"
INTERNAL_SUFFIX = ".internal"
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RESERVED_HEADERS = FRAMING_HEADERS | {"host", HOPS_HEADER}
_HALT_STATUS = {ErrorCode.FETCH_TIMEOUT: 504, ErrorCode.FETCH_LOOP: 508}


class _Failed(Exception):
    """One attempt got no answer: its code and message."""

    def __init__(self, code: ErrorCode, message: str, resolved_ip: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.resolved_ip = resolved_ip


@dataclass(slots=True)
class _Request:
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def describe(self) -> dict[str, Any]:
        header: dict[str, list[str]] = {}
        for name, value in self.headers:
            header.setdefault(name, []).append(value)
        return {
            "method": self.method,
            "url": self.url,
            "header": header,
            "body": self.body.decode("utf-8", "replace"),
        }


@dataclass(slots=True)
class _Attempt:
    """What one attempt (redirects included) gave."""

    time_ms: int
    response: FetchResult | None = None
    error: _Failed | None = None

    @property
    def resolved_ip(self) -> str:
        if self.response is not None:
            return self.response.resolved_ip
        return self.error.resolved_ip if self.error is not None else ""

    def response_values(self, *, with_body: bool) -> dict[str, Any]:
        r = self.response
        header: dict[str, list[str]] = {}
        for name, value in r.headers if r is not None else ():
            header.setdefault(name.lower(), []).append(value)
        values = {
            "resolved_ip": self.resolved_ip,
            "header": header,
            "status_code": r.status if r is not None else 0,
            "time_ms": self.time_ms,
        }
        if with_body:
            values["body"] = r.body.decode("utf-8", "replace") if r is not None else ""
        return values

    def error_values(self) -> dict[str, str]:
        if self.error is None:
            return {"code": "", "message": ""}
        return {"code": self.error.code.value, "message": self.error.message}


class HttpRequest(Action):
    type = "http-request"
    phases = frozenset({Phase.HTTP_REQUEST, Phase.HTTP_RESPONSE})

    def __init__(
        self,
        *,
        url: Renderable,
        method: str,
        query: tuple[tuple[str, native.Template], ...],
        headers: tuple[tuple[str, native.Template], ...],
        body: native.Template | None,
        timeout: float,
        max_redirects: int,
        retry: native.Program | None,
        halt: bool,
        targets: ExternalTargets,
    ) -> None:
        self.url = url
        self.method = method
        self.query = query
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.max_redirects = max_redirects
        self.retry = retry
        self.halt = halt
        self.targets = targets

    # --- configuration ---------------------------------------------------------

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        url = config.url_template("url", required=True)
        assert url is not None
        if url.is_constant:
            _check_constant_url(config, url.render({}), scope.options.http_request)
        method = (config.string("method", default="GET") or "GET").upper()
        if method not in METHODS:
            config.fail("method", f"method must be one of {', '.join(METHODS)}, not {method!r}")
        query = []
        for path, item in config.items("query_params", max_items=32) or []:
            param = config.reader_at(path, item)
            key = param.string("key", required=True, max_length=128)
            value = param.template("value", required=True)
            assert key is not None and value is not None
            if len(value.source) > 8192:
                param.fail("value", "value is longer than 8192 characters")
            query.append((key, value))
        headers = config.template_map("headers", max_items=10, header_names=True) or {}
        for name in headers:
            if name in _RESERVED_HEADERS:
                config.fail("headers", f"header {name!r} cannot be set on an http-request")
        body = config.template("body")
        timeout = config.duration("timeout", default=3.0, minimum=1.0, maximum=30.0)
        # The public page disagrees with itself (default 10, 0-100 vs 0, 0-5):
        # the wider range loads every documented policy, the default follows
        # none (each redirect is another request to check).
        max_redirects = config.integer("max_redirects", default=0, minimum=0, maximum=100)
        retry = config.expression(
            "retry_condition", condition=True, variables=HTTP_REQUEST_RETRY_VARIABLES
        )
        on_error = config.string("on_error", default="continue", choices=("continue", "halt"))
        assert timeout is not None and max_redirects is not None
        return cls(
            url=url,
            method=method,
            query=tuple(query),
            headers=tuple(headers.items()),
            body=body,
            timeout=timeout,
            max_redirects=max_redirects,
            retry=retry,
            halt=on_error == "halt",
            targets=scope.options.http_request,
        )

    # --- per request ---------------------------------------------------------------

    def run(self, ctx: ActionContext) -> Generator[Effect, EffectResult, Decision | None]:
        deadline = ctx.now() + self.timeout
        request = self._request(ctx)
        attempts: list[_Attempt] = []
        while True:
            attempt = yield from self._attempt(ctx, request, deadline)
            attempts.append(attempt)
            if not self._retry(ctx, request, attempts, deadline):
                break
        last = attempts[-1]
        results: dict[str, Any] = {
            "attempts": [_attempt_values(a) for a in attempts],
            "req": request.describe(),
        }
        if last.response is not None:
            results["res"] = last.response_values(with_body=True)
        if last.error is not None:
            results["error"] = last.error_values()
        ctx.record("http_request", results)
        if last.error is None:
            return None
        error = last.error
        host = urlsplit(request.url).hostname or request.url
        reason = f"http-request to {host} failed: {error.message}"
        if self.halt:
            raise ActionError(error.code, reason, status=_HALT_STATUS.get(error.code, 502))
        ctx.emit(self.type, "continue", reason, error_code=error.code.value)
        return None

    def _request(self, ctx: ActionContext) -> _Request:
        url = ctx.render(self.url)
        if self.query:
            pairs = [(key, ctx.render(value)) for key, value in self.query]
            url = url.split("#", 1)[0]
            url += ("&" if "?" in url else "?") + urlencode(pairs, quote_via=quote)
        headers = [
            (name, ctx.render_header_value(value, name).decode("latin-1"))
            for name, value in self.headers
        ]
        body = ctx.render(self.body).encode("utf-8") if self.body is not None else b""
        return _Request(self.method, url, tuple(headers), body)

    def _attempt(
        self, ctx: ActionContext, request: _Request, deadline: float
    ) -> Generator[Effect, EffectResult, _Attempt]:
        """One attempt, following redirects."""
        started = ctx.now()
        try:
            hops = _hops(ctx) + 1
            if hops > MAX_HOPS:
                raise _Failed(ErrorCode.FETCH_LOOP, f"loop detected: more than {MAX_HOPS} hops")
            extra = [(HOPS_HEADER, str(hops)), ("x-forwarded-for", ctx.conn.client_ip)]
            if ctx.request_id:
                extra.append(("edgeward-request-id", ctx.request_id))
            method, url, body = request.method, request.url, request.body
            redirects = 0
            while True:
                self._check_target(url)
                remaining = deadline - ctx.now()
                if remaining <= 0:
                    raise _Failed(ErrorCode.FETCH_TIMEOUT, f"no answer within {self.timeout:g}s")
                fetch = Fetch(
                    url,
                    method,
                    (*request.headers, *extra),
                    body,
                    timeout_s=remaining,
                    max_bytes=MAX_RESPONSE_BYTES,
                    address_allowed=self.targets.address_allowed,
                )
                result = yield from ctx.fetch(fetch)
                if result.status == 0:
                    raise _failure(result, self.timeout)
                location = _header(result, "location")
                if result.status not in REDIRECTS or location is None:
                    break
                if redirects >= self.max_redirects:
                    break  # the 3xx is the answer
                redirects += 1
                url = urljoin(url, location)
                if result.status == 303 or (result.status in (301, 302) and method == "POST"):
                    method, body = "GET", b""
        except _Failed as failed:
            return _Attempt(_elapsed_ms(ctx, started), error=failed)
        return _Attempt(_elapsed_ms(ctx, started), response=result)

    def _check_target(self, url: str) -> None:
        parts = urlsplit(url)
        host = parts.hostname
        if parts.scheme not in ("http", "https") or not host:
            raise _Failed(ErrorCode.FETCH_FAILED, f"{url!r} is not an http(s) URL")
        if host.rstrip(".").endswith(INTERNAL_SUFFIX):
            return  # the operator's own endpoints: the proxy routes them, never DNS
        refusal = self.targets.host_refusal(host)
        if refusal is not None:
            raise _Failed(ErrorCode.FETCH_REFUSED, refusal)

    def _retry(
        self, ctx: ActionContext, request: _Request, attempts: list[_Attempt], deadline: float
    ) -> bool:
        if self.retry is None or len(attempts) > MAX_RETRIES or ctx.now() >= deadline:
            return False
        last = attempts[-1]
        if last.error is not None and last.error.code in (
            ErrorCode.FETCH_LOOP,
            ErrorCode.FETCH_REFUSED,
            ErrorCode.FETCH_INTERNAL,
            ErrorCode.FETCH_TIMEOUT,
        ):
            return False  # another attempt cannot go differently
        activation = dict(ctx.activation)
        activation["attempts"] = len(attempts)
        activation["last_attempt"] = {
            "req": request.describe(),
            "res": last.response_values(with_body=True),
            "error": last.error_values(),
        }
        return self.retry.evaluate(activation) is True


def _attempt_values(attempt: _Attempt) -> dict[str, Any]:
    res = attempt.response_values(with_body=False)
    values = {
        "resolved_ip": res["resolved_ip"],
        "response_header": res["header"],
        "response_status_code": res["status_code"],
        "response_time_ms": res["time_ms"],
    }
    if attempt.error is not None:
        values["error"] = attempt.error_values()
    return values


def _failure(result: FetchResult, timeout: float) -> _Failed:
    kind = result.failure
    message = result.error or "no answer"
    if kind == "timeout":
        return _Failed(ErrorCode.FETCH_TIMEOUT, f"no answer within {timeout:g}s")
    if kind == "too_large":
        code = ErrorCode.FETCH_TOO_LARGE
        message = f"the response body is larger than {MAX_RESPONSE_BYTES // 1024} KiB"
    elif kind == "refused":
        code = ErrorCode.FETCH_REFUSED
    elif kind == "internal":
        code = ErrorCode.FETCH_INTERNAL
    elif kind == "loop":
        code = ErrorCode.FETCH_LOOP
    else:
        code = ErrorCode.FETCH_FAILED
    return _Failed(code, message, result.resolved_ip)


def _header(result: FetchResult, name: str) -> str | None:
    return next((v for n, v in result.headers if n.lower() == name), None)


def _hops(ctx: ActionContext) -> int:
    """The hops of the request being handled: its `edgeward-hops` header
    (set when the edge called itself); unreadable counts as too many."""
    received = ctx.received
    if received is None:
        return 0
    values = [v for n, v in received.headers if n == HOPS_HEADER.encode()]
    hops = 0
    for value in values:
        text = value.strip()
        if not text.isdigit() or len(text) > 3:
            return MAX_HOPS
        hops = max(hops, int(text))
    return hops


def _elapsed_ms(ctx: ActionContext, started: float) -> int:
    return max(0, round((ctx.now() - started) * 1000))


def _check_constant_url(config: ConfigReader, url: str, targets: ExternalTargets) -> None:
    """A URL without `${...}` is checked at load: its form, and whether the
    edge config allows its host (when the edge config is known)."""
    parts = urlsplit(url)
    try:
        host = parts.hostname
    except ValueError:
        host = None
    if parts.scheme not in ("http", "https") or not host:
        config.fail("url", f"url must be an absolute http(s) URL, not {url!r}")
    if host.rstrip(".").endswith(INTERNAL_SUFFIX):
        return  # an internal endpoint: found (or not) per request
    if targets.known and (refusal := targets.host_refusal(host)) is not None:
        config.fail("url", refusal)


__all__ = ["HOPS_HEADER", "MAX_HOPS", "MAX_RESPONSE_BYTES", "HttpRequest"]
