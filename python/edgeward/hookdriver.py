"""The driver side of `edgeward.hooks`, sans-IO: the one flow of an
exchange's hooks that `edgeward serve` (`proxy/exchange.py`, with real I/O)
and `edgeward policy test` (`policy/cases.py`, offline) both run.

`HookFlow` decides what happens between the hooks and the wire: the request
phase, the internal endpoints a `ForwardInternal` goes into (their hooks
chained inside), which body goes upstream and through which filter, the
head the response phase sees for an answer the edge made, and the body of
an answer that is sent whole. It performs no I/O: a phase that needs some
returns a generator of effects, run to its outcome by `drive` (awaiting a
coroutine per effect: the proxy) or `drive_sync` (a plain function: policy
test, the unit tests). `ChainedHooks` wraps a listener's policy around an
endpoint's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar, overload

from edgeward.hooks import (
    BodyFilter,
    Effect,
    EffectResult,
    ExchangeHooks,
    ExchangeSummary,
    Forward,
    ForwardInternal,
    Hooked,
    LocalResponse,
    PassResponse,
    RequestHead,
    RequestOutcome,
    ResponseHead,
    ResponseOutcome,
    Traced,
    needs_io,
)

T = TypeVar("T")
Perform = Callable[[Effect], Awaitable[EffectResult]]
PerformSync = Callable[[Effect], EffectResult]

ERROR_HEADER = b"edgeward-error"


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


@overload
def drive_sync(hooked: Generator[Effect, EffectResult, T], perform: PerformSync) -> T: ...
@overload
def drive_sync(hooked: T, perform: PerformSync) -> T: ...


def drive_sync(hooked: Any, perform: PerformSync) -> Any:
    """`drive` with a plain function: a hook's outcome, what it returned or
    what its generator returns once each effect it yields is answered by
    `perform` (offline: `policy test` answers from the case)."""
    if not needs_io(hooked):
        return hooked
    try:
        effect = hooked.send(None)
        while True:
            effect = hooked.send(perform(effect))
    except StopIteration as stop:
        return stop.value
    finally:
        hooked.close()


class HookFlow:
    """The hooks of one exchange, in the order and under the rules the
    proxy runs them. `hooks` is None until there are some (an exchange on
    an internal endpoint made for an `http-request` starts without)."""

    __slots__ = ("hooks",)

    def __init__(self, hooks: ExchangeHooks | None) -> None:
        self.hooks = hooks

    # --- request --------------------------------------------------------------

    def request(self, head: RequestHead) -> Hooked[RequestOutcome]:
        """The request phase."""
        assert self.hooks is not None
        return self.hooks.on_http_request(head)

    def enter(
        self, outcome: ForwardInternal, inner: ExchangeHooks | None
    ) -> Hooked[RequestOutcome]:
        """Go on to the internal endpoint `outcome` forwards to, whose hooks
        are `inner` (None: it has no policy, its upstream gets the request).
        Its request phase runs now, its response phase before ours (its
        hooks are chained inside); the body filter of the way in comes
        first. The caller has checked that the endpoint may be entered
        (`FindInternal`) and ran its `on_tcp_connect`."""
        if inner is None:
            return Forward(outcome.head, outcome.body, outcome.body_filter)
        self.hooks = inner if self.hooks is None else ChainedHooks(self.hooks, inner)
        hooked = inner.on_http_request(outcome.head)
        if needs_io(hooked):
            return _filtered_after(outcome.body_filter, hooked)
        return _after(outcome.body_filter, hooked)

    @staticmethod
    def request_body(
        outcome: Forward, buffered: bytes | None
    ) -> tuple[bytes | None, BodyFilter | None]:
        """What goes upstream: the body to send whole (None: it streams from
        the client) and the filter the streamed body goes through. A body
        the hooks read (`outcome.body`, else `buffered`, read for one of an
        earlier endpoint's) is filtered here, and sent with its new length."""
        body = outcome.body if outcome.body is not None else buffered
        body_filter = outcome.body_filter
        if body_filter is not None and body is not None:
            return filter_whole(body_filter, body), None
        return body, body_filter

    # --- response -------------------------------------------------------------

    @staticmethod
    def answer_head(response: LocalResponse) -> ResponseHead:
        """The head of an answer the edge makes, as the response phase sees
        it and the client gets it: with its `edgeward-error` code."""
        headers = list(response.headers)
        if response.error_code:
            headers.append((ERROR_HEADER, response.error_code.encode()))
        return ResponseHead(response.status, headers)

    def response(self, head: ResponseHead) -> Hooked[ResponseOutcome]:
        """The response phase, for the upstream's head or `answer_head`."""
        assert self.hooks is not None
        return self.hooks.on_http_response(head)

    @staticmethod
    def passed_head(outcome: PassResponse) -> ResponseHead:
        """The head to send on: a body that goes through a filter loses its
        Content-Length (the proxy frames it)."""
        if outcome.body_filter is None:
            return outcome.head
        headers = [h for h in outcome.head.headers if h[0] != b"content-length"]
        return ResponseHead(outcome.head.status, headers)

    def complete(self, summary: ExchangeSummary) -> None:
        if self.hooks is not None:
            self.hooks.on_complete(summary)


def record(hooks: ExchangeHooks, trace: list[Any]) -> None:
    """Have `hooks` (and the hooks chained in them) append what their rules
    do to `trace`: the traffic inspector's decision trace. Hooks that keep
    no trace (not a compiled policy) are left alone. A policy that records
    runs its rules in Python, not in one native call: the price of
    inspection, paid only by the exchanges of inspected endpoints."""
    if isinstance(hooks, ChainedHooks):
        record(hooks.outer, trace)
        record(hooks.inner, trace)
    elif isinstance(hooks, Traced):
        hooks.trace = trace


def filter_whole(body_filter: BodyFilter, body: bytes) -> bytes:
    """A whole body through a filter."""
    return body_filter.feed(body) + body_filter.finish()


def _after(first: BodyFilter | None, outcome: RequestOutcome) -> RequestOutcome:
    if isinstance(outcome, Forward | ForwardInternal):
        outcome.body_filter = then(first, outcome.body_filter)
    return outcome


def _filtered_after(
    first: BodyFilter | None, gen: Generator[Effect, EffectResult, RequestOutcome]
) -> Generator[Effect, EffectResult, RequestOutcome]:
    return _after(first, (yield from gen))


class ChainedHooks:
    """A listener's policy wrapped around an endpoint's (or an endpoint's
    around an internal endpoint's it forwards to): requests go through the
    outer one first, responses through the inner one first (like nested
    middleware). Either may answer or close; the other is then skipped for
    that phase."""

    __slots__ = ("inner", "outer")

    def __init__(self, outer: ExchangeHooks, inner: ExchangeHooks) -> None:
        self.outer = outer
        self.inner = inner

    def on_http_request(self, head: RequestHead) -> Generator[Effect, EffectResult, RequestOutcome]:
        outcome = self.outer.on_http_request(head)
        if needs_io(outcome):
            outcome = yield from outcome
        if not isinstance(outcome, Forward):
            return outcome
        inner = self.inner.on_http_request(outcome.head)
        if needs_io(inner):
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
        if needs_io(inner):
            inner = yield from inner
        if not isinstance(inner, PassResponse):
            return inner
        outer = self.outer.on_http_response(inner.head)
        if needs_io(outer):
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
