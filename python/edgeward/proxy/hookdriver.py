"""The driver side of `edgeward.hooks`: runs effect-yielding hook generators,
performs their effects, and chains a listener's policy around an endpoint's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import TypeVar

from edgeward.hooks import (
    BodyFilter,
    Effect,
    EffectResult,
    ExchangeHooks,
    ExchangeSummary,
    Forward,
    ForwardInternal,
    PassResponse,
    RequestHead,
    RequestOutcome,
    ResponseHead,
    ResponseOutcome,
)

T = TypeVar("T")
Perform = Callable[[Effect], Awaitable[EffectResult]]


async def drive(gen: Generator[Effect, EffectResult, T], perform: Perform) -> T:
    """Run a hook's generator to its outcome, performing every effect it
    yields. (A hook that needs no I/O returns its outcome instead: callers
    test for a generator first, so that case costs no coroutine.)"""
    try:
        effect = gen.send(None)
        while True:
            effect = gen.send(await perform(effect))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        gen.close()


class ChainedExchange:
    """A listener's policy wrapped around an endpoint's: requests go through
    the outer one first, responses through the inner one first (like nested
    middleware). Either may answer or close; the other is then skipped for
    that phase."""

    __slots__ = ("inner", "outer")

    def __init__(self, outer: ExchangeHooks, inner: ExchangeHooks) -> None:
        self.outer = outer
        self.inner = inner

    def on_http_request(self, head: RequestHead) -> Generator[Effect, EffectResult, RequestOutcome]:
        outcome = self.outer.on_http_request(head)
        if isinstance(outcome, Generator):
            outcome = yield from outcome
        if not isinstance(outcome, Forward):
            return outcome
        inner = self.inner.on_http_request(outcome.head)
        if isinstance(inner, Generator):
            inner = yield from inner
        if not isinstance(inner, Forward | ForwardInternal):
            return inner
        if inner.body is None and outcome.body is not None:
            inner.body = outcome.body
        inner.body_filter = then(outcome.body_filter, inner.body_filter)
        return inner

    def on_http_response(
        self, head: ResponseHead
    ) -> Generator[Effect, EffectResult, ResponseOutcome]:
        inner = self.inner.on_http_response(head)
        if isinstance(inner, Generator):
            inner = yield from inner
        if not isinstance(inner, PassResponse):
            return inner
        outer = self.outer.on_http_response(inner.head)
        if isinstance(outer, Generator):
            outer = yield from outer
        if isinstance(outer, PassResponse) and inner.body_filter is not None:
            return PassResponse(outer.head, then(inner.body_filter, outer.body_filter))
        return outer

    def on_complete(self, summary: ExchangeSummary) -> None:
        try:
            self.inner.on_complete(summary)
        finally:
            self.outer.on_complete(summary)


def then(first: BodyFilter | None, second: BodyFilter | None) -> BodyFilter | None:
    """A body through `first`, then `second` (either may be absent)."""
    if first is None or second is None:
        return first or second
    return _Both(first, second)


class _Both:
    __slots__ = ("first", "second")

    def __init__(self, first: BodyFilter, second: BodyFilter) -> None:
        self.first = first
        self.second = second

    def feed(self, data: bytes) -> bytes:
        return self.second.feed(self.first.feed(data))

    def finish(self) -> bytes:
        return self.second.feed(self.first.finish()) + self.second.finish()
