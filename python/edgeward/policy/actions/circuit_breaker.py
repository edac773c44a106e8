"""`circuit-breaker`: stop sending requests to an upstream that keeps
failing, and let it recover.

The circuit of the endpoint (or of the `bucket`, an edgeward addition)
counts the outcomes of the requests it let through, reported when each
exchange completes: 5xx is an error (`edgeward.policy.circuit` has the
state machine). Once `volume_threshold` outcomes are in the rolling
`window_duration` and the share of errors reaches `error_threshold`, the
circuit opens: requests are answered 503 `ERR_EDGEWARD_3202` (with
`Retry-After`) for `tripped_duration`, then one probe at a time goes
through (half-open) until one succeeds. `enforce: false` never trips. No
result variables (as the public action).

The migration guide's older names `rolling_window` and
`error_threshold_percentage` (a fraction too, 0.5 = half) are accepted
with a warning.
"""

from __future__ import annotations

import functools
import math
from typing import Self

from edgeward import native
from edgeward.hooks import ExchangeSummary
from edgeward.policy.actions._http import error_decision
from edgeward.policy.actions.base import (
    Action,
    ActionContext,
    CompileScope,
    ConfigReader,
    Decision,
    ErrorCode,
    Phase,
)
from edgeward.policy.circuit import Breaker, Breakers, Settings, outcome

MAX_VOLUME = 2_000_000_000
MIN_DURATION, MAX_DURATION = 1.0, 120.0  # window and tripped duration: 1s-2m
MAX_BUCKETS = 128  # the legacy API's limit; the public action fixes 10


class CircuitBreaker(Action):
    type = "circuit-breaker"
    phases = frozenset({Phase.HTTP_REQUEST})

    def __init__(self, settings: Settings, bucket: native.Template | None, enforce: bool) -> None:
        self.breakers = Breakers(settings)
        self.bucket = bucket
        self.enforce = enforce

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        threshold = config.number(
            "error_threshold",
            default=0.5,
            minimum=0.0,
            maximum=1.0,
            aliases=("error_threshold_percentage",),
        )
        volume = config.integer("volume_threshold", default=10, minimum=1, maximum=MAX_VOLUME)
        window = config.duration(
            "window_duration",
            default=10.0,
            minimum=MIN_DURATION,
            maximum=MAX_DURATION,
            aliases=("rolling_window",),
        )
        tripped = config.duration(
            "tripped_duration", default=10.0, minimum=MIN_DURATION, maximum=MAX_DURATION
        )
        buckets = config.integer("num_buckets", default=10, minimum=1, maximum=MAX_BUCKETS)
        bucket = config.template("bucket")
        enforce = config.boolean("enforce", default=True)
        assert threshold is not None and volume is not None and window is not None
        assert tripped is not None and buckets is not None and enforce is not None
        settings = Settings(threshold, volume, window, tripped, buckets)
        return cls(settings, bucket, enforce)

    def apply(self, ctx: ActionContext) -> Decision | None:
        if not self.enforce:
            return None
        if self.bucket is not None:
            key = ctx.render(self.bucket)
        else:
            key = ctx.endpoint.name if ctx.endpoint is not None else ""
        breaker = self.breakers.get(key)
        admission = breaker.admit(ctx.now())
        if admission.allowed:
            ctx.on_complete(functools.partial(_completed, breaker, admission.probe))
            return None
        retry = max(1, math.ceil(admission.retry_after - 1e-6))  # whole seconds
        return error_decision(
            ctx,
            503,
            ErrorCode.CIRCUIT_OPEN,
            "Service Unavailable",
            reason="circuit breaker tripped",  # never the bucket's value
            headers=[(b"retry-after", str(retry).encode())],
        )


def _completed(breaker: Breaker, probe: bool, summary: ExchangeSummary, now: float) -> None:
    breaker.record(outcome(summary), probe=probe, now=now)
