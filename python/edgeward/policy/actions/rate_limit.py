"""`rate-limit`: at most `capacity` requests per `rate` for each bucket.

A bucket is one combination of the values of the `bucket_key` CEL
expressions (client IP, an API key header, a JWT subject...). The
sliding-window counter and the bucket store are in `edgeward.policy.ratelimit`.
Over the limit: 429 with `Retry-After` (whole seconds until a request would
be admitted), unless `enforce: false`. Results: `actions.ngrok.rate_limit.
{bucket_key, limited}` and, when limited, `.error.{code,message}`. Events
name the limit, never the bucket's values (they may be API keys).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, Self

from edgeward import native
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
from edgeward.policy.ratelimit import RateLimitStore, default_store

MAX_CAPACITY = 2_000_000_000
MIN_RATE, MAX_RATE = 60.0, 86_400.0  # seconds, in steps of 10 (public format)


class RateLimit(Action):
    type = "rate-limit"
    phases = frozenset({Phase.HTTP_REQUEST})

    def __init__(
        self,
        *,
        name: str,
        capacity: int,
        window: float,
        bucket_key: Sequence[native.Program],
        enforce: bool,
        store: RateLimitStore | None = None,
    ) -> None:
        self.name = name
        self.capacity = capacity
        self.window = window
        self.bucket_key = tuple(bucket_key)
        self.enforce = enforce
        self.store: RateLimitStore = store if store is not None else default_store()
        self.summary = f"rate limit {name!r} ({capacity} per {window:g}s) exceeded"

    @classmethod
    def from_config(cls, config: ConfigReader, scope: CompileScope) -> Self:
        name = config.string("name", required=True, max_length=1023)
        config.string("algorithm", required=True, choices=("sliding_window",))
        capacity = config.integer("capacity", required=True, minimum=1, maximum=MAX_CAPACITY)
        window = config.duration("rate", required=True, minimum=MIN_RATE, maximum=MAX_RATE)
        assert name is not None and capacity is not None and window is not None
        if window % 10:
            config.fail("rate", f"rate must be a multiple of 10 seconds, not {window:g}s")
        programs = config.expression_list("bucket_key", required=True, min_items=1, max_items=10)
        enforce = config.boolean("enforce", default=True)
        assert programs is not None and enforce is not None
        return cls(
            name=name, capacity=capacity, window=window, bucket_key=programs, enforce=enforce
        )

    def apply(self, ctx: ActionContext) -> Decision | None:
        activation = ctx.activation
        if len(self.bucket_key) == 1:
            key = _text(self.bucket_key[0].evaluate(activation))
        else:
            values = [_text(program.evaluate(activation)) for program in self.bucket_key]
            key = json.dumps(values, ensure_ascii=False)
        decision = self.store.hit(key, capacity=self.capacity, window=self.window, now=ctx.now())
        if ctx.records:
            results: dict[str, Any] = {"bucket_key": key, "limited": not decision.allowed}
            if not decision.allowed:
                results["error"] = {"code": ErrorCode.RATE_LIMITED.value, "message": self.summary}
            ctx.record("rate_limit", results)
        if decision.allowed or not self.enforce:
            return None
        return self.refused(ctx, decision.retry_after)

    def refused(self, ctx: ActionContext, retry_after: float) -> Decision:
        """The 429 of a request over the limit, `retry_after` seconds before
        one would fit (also the answer to the native runner's check)."""
        retry = max(1, math.ceil(retry_after - 1e-6))  # whole seconds, no float noise
        return error_decision(
            ctx,
            429,
            ErrorCode.RATE_LIMITED,
            "Too Many Requests",
            reason=self.summary,
            headers=[(b"retry-after", str(retry).encode())],
        )


def _text(value: Any) -> str:
    """A bucket key value as text: strings as they are, anything else
    (a header's list of values, a number) as JSON."""
    if type(value) is str:
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
