"""`owasp-crs-request` / `owasp-crs-response`: the OWASP Core Rule Set.

The real CRS runs on the real engine (ModSecurity v3 through
`edgeward.waf`), at paranoia level 1 with anomaly scoring: a request is
blocked when its inbound score reaches 5, a response when its outbound
score reaches 4 (403, `ERR_EDGEWARD_3700` / `3702`). The rule set is
compiled once per process and rules directory (the edge config's
`owasp_crs.rules_dir`, by default Debian's `/usr/share/modsecurity-crs`)
and shared by every policy; `exclude_rule_ids` makes a variant that shares
its compiled rules.

A transaction costs the engine one to several milliseconds of CPU (tens of
milliseconds for a 4 KiB form or JSON body with hundreds of fields), so it
runs in a worker thread through the `Offload` effect; the engine's calls
release the GIL. `process_body` adds the first 4 KiB of the body (request:
read through `ReadBody`, so the policy body limit applies; response: read
ahead through `ReadResponseBody`, the rest streams).

Results: `actions.ngrok.owasp_crs_request|response.{decision, anomaly_score,
anomaly_score_threshold, matched_rules[i].{id, message, severity, data},
error.{code, message}}`.
"""

from __future__ import annotations

import functools
from collections.abc import Generator
from typing import Self

from edgeward.hooks import Effect, EffectResult, RequestHead
from edgeward.policy.actions._http import error_decision
from edgeward.policy.actions.base import (
    Action,
    ActionContext,
    CompileScope,
    ConfigReader,
    Decision,
    Phase,
)
from edgeward.policy.errors import ActionError, ErrorCode
from edgeward.waf import (
    BODY_PREFIX,
    DEFAULT_RULES_DIR,
    INBOUND_THRESHOLD,
    OUTBOUND_THRESHOLD,
    CoreRuleSet,
    ModSecurityError,
    RequestInput,
    ResponseInput,
    Verdict,
)

EXCLUDABLE = range(900000, 1000000)  # the CRS's own rule ids (the public field's range)


class _OwaspCrs(Action):
    """What both directions share: config, the loaded rule set, results."""

    result_key = "owasp_crs_request"
    blocked_code = ErrorCode.WAF_REQUEST_BLOCKED
    blocked_message = "The request was blocked by the WAF."
    threshold = INBOUND_THRESHOLD

    def __init__(
        self, crs: CoreRuleSet, *, halt: bool, process_body: bool, exclude: frozenset[int]
    ) -> None:
        self.crs = crs
        self.halt = halt
        self.process_body = process_body
        self.exclude = exclude

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        on_error = config.string("on_error", default="halt", choices=("continue", "halt"))
        process_body = bool(config.boolean("process_body", default=False))
        exclude: set[int] = set()
        for i, (_, item) in enumerate(config.items("exclude_rule_ids") or ()):
            if isinstance(item, bool) or not isinstance(item, int) or item not in EXCLUDABLE:
                config.fail(
                    "exclude_rule_ids",
                    f"exclude_rule_ids[{i}] must be a CRS rule id (an integer from 900000"
                    f" to 999999), not {item!r}",
                )
            exclude.add(item)
        rules_dir = scope.options.owasp_crs_rules_dir or DEFAULT_RULES_DIR
        try:
            crs = CoreRuleSet.load(rules_dir)
        except ModSecurityError as exc:
            config.fail(None, f"the OWASP Core Rule Set cannot be loaded: {exc}")
        return cls(
            crs, halt=on_error == "halt", process_body=process_body, exclude=frozenset(exclude)
        )

    def _finish(self, ctx: ActionContext, verdict: Verdict) -> Decision | None:
        decision = "deny" if verdict.blocked else "allow"
        ctx.record(
            self.result_key or "",
            {
                "decision": decision,
                "anomaly_score": verdict.anomaly_score,
                "anomaly_score_threshold": verdict.threshold,
                "matched_rules": [r.as_variable() for r in verdict.matched_rules],
                "error": {"code": "", "message": ""},
            },
        )
        if not verdict.blocked:
            return None
        ids = ", ".join(str(r.id) for r in verdict.matched_rules) or "none logged"
        reason = (
            f"OWASP CRS {self.crs.version}: anomaly score {verdict.anomaly_score}"
            f" (threshold {verdict.threshold}); rules {ids}"
        )
        return error_decision(ctx, 403, self.blocked_code, self.blocked_message, reason=reason)

    def _failed(self, ctx: ActionContext, message: str) -> Decision | None:
        """The engine could not inspect: `on_error` decides."""
        ctx.record(
            self.result_key or "",
            {
                "decision": "allow",
                "anomaly_score": 0,
                "anomaly_score_threshold": self.threshold,
                "matched_rules": [],
                "error": {"code": ErrorCode.WAF_FAILED.value, "message": message},
            },
        )
        reason = f"{self.type}: {message}"
        if self.halt:
            raise ActionError(ErrorCode.WAF_FAILED, reason, status=500)
        ctx.emit(self.type, "continue", reason, error_code=ErrorCode.WAF_FAILED.value)
        return None

    def _inspect(
        self, ctx: ActionContext, call: functools.partial[Verdict]
    ) -> Generator[Effect, EffectResult, Decision | None]:
        try:
            verdict = yield from ctx.offload(call)
        except ModSecurityError as exc:
            return self._failed(ctx, str(exc))
        return self._finish(ctx, verdict)


class OwaspCrsRequest(_OwaspCrs):
    type = "owasp-crs-request"
    phases = frozenset({Phase.HTTP_REQUEST})
    result_key = "owasp_crs_request"

    def run(self, ctx: ActionContext) -> Generator[Effect, EffectResult, Decision | None]:
        head = ctx.received or ctx.request
        body, complete = b"", False
        if self.process_body:
            whole = yield from ctx.read_body()
            if whole is None:  # over the policy's body limit: it cannot be forwarded either
                limit = ctx.state.policy.body_limit
                return error_decision(
                    ctx,
                    413,
                    ErrorCode.BODY_TOO_LARGE,
                    "Request body too large",
                    reason=f"{self.type}: body larger than {limit} bytes",
                )
            body, complete = whole[:BODY_PREFIX], len(whole) <= BODY_PREFIX
        request = request_input(ctx, head, body, complete)
        return (
            yield from self._inspect(
                ctx, functools.partial(self.crs.inspect_request, request, self.exclude)
            )
        )


class OwaspCrsResponse(_OwaspCrs):
    type = "owasp-crs-response"
    phases = frozenset({Phase.HTTP_RESPONSE})
    result_key = "owasp_crs_response"
    blocked_code = ErrorCode.WAF_RESPONSE_BLOCKED
    blocked_message = "The response was blocked by the WAF."
    threshold = OUTBOUND_THRESHOLD

    def run(self, ctx: ActionContext) -> Generator[Effect, EffectResult, Decision | None]:
        response = ctx.response
        assert response is not None  # response phase only
        body = b""
        if self.process_body:
            body, _complete = yield from ctx.read_response_body(BODY_PREFIX)
        request = request_input(ctx, ctx.received or ctx.request, b"", False)
        inspected = ResponseInput(request, response.status, list(response.headers), body)
        return (
            yield from self._inspect(
                ctx, functools.partial(self.crs.inspect_response, inspected, self.exclude)
            )
        )


def request_input(
    ctx: ActionContext, head: RequestHead | None, body: bytes, complete: bool
) -> RequestInput:
    """The engine's view of the request: the head as received (a Host
    header from the authority for HTTP/2) and the connection's addresses."""
    conn = ctx.conn
    if head is None:
        raise ActionError(ErrorCode.WAF_FAILED, "no request to inspect")
    headers = list(head.headers)
    if not any(name == b"host" for name, _ in headers) and head.authority:
        headers.insert(0, (b"host", head.authority))
    return RequestInput(
        method=head.method,
        target=head.target,
        http_version=head.http_version,
        headers=headers,
        client_ip=conn.client_ip,
        client_port=conn.client_port,
        server_ip=conn.server_ip,
        server_port=conn.server_port,
        body=body,
        body_complete=complete,
    )
