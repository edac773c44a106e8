"""Rate-limit state: the sliding-window counter and where its buckets live.

The algorithm (`sliding_window`, the only one the public format defines)
is the sliding-window counter: time is cut into fixed windows of `window`
seconds aligned on the epoch; a bucket keeps the number of requests it
admitted in the current window and in the previous one. At time `t`, a
fraction `f` into the current window, the bucket's load is estimated as

    previous * (1 - f) + current

i.e. the previous window's requests are assumed evenly spread and only the
part still inside the sliding window `(t - window, t]` counts. A request is
admitted when `load + 1 <= capacity` and then counted; a refused request is
not counted, so a client that keeps knocking is not locked out longer.

Two integers per bucket instead of a timestamp per request: memory does not
grow with the capacity (up to 2e9). The price is that a burst at the end of
one window is forgotten linearly over the next instead of all at once, which
errs on the strict side at most by the skew of that assumption.

`Retry-After` is the exact time until the estimate, with no further request,
lets one more request in (rounded up to whole seconds, at least 1).

`RateLimitStore` is the seam for a shared store: one call that counts and
decides atomically, given the bucket key text (a store keys buckets by a
fixed-size digest of it: bucket values may be long). `MemoryStore` keeps
buckets in this process: each new bucket first drops up to two idle ones
(two windows without a request, i.e. empty), and at most `max_buckets` are
kept, least recently used first out. It is the reference; with the native
module the edge uses `NativeStore` (the same counter in Rust,
`native.RateLimitStore`), which the native phase runner checks in the same
call as the rest of the phase (docs/policy.md, "The native phase runner").
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from edgeward import native

_EPSILON = 1e-12  # float noise must not refuse a request at exactly its Retry-After


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after: float  # seconds until one more request would be admitted; 0 when allowed


_ADMITTED = RateDecision(True, 0.0)


class RateLimitStore(Protocol):
    def hit(self, key: str, *, capacity: int, window: float, now: float) -> RateDecision:
        """Count a request to the bucket of key text `key` if it fits; say
        whether it did."""
        ...


def default_store() -> RateLimitStore:
    """The store of an action: the native one when the module is loaded."""
    return MemoryStore() if native.RateLimitStore is None else NativeStore()


class NativeStore:
    """`native.RateLimitStore` behind the `RateLimitStore` interface; the
    native phase runner counts in `buckets` directly."""

    __slots__ = ("buckets",)

    def __init__(self, *, max_buckets: int = 100_000) -> None:
        assert native.RateLimitStore is not None
        self.buckets: native.RateLimitStoreType = native.RateLimitStore(max_buckets=max_buckets)

    def __len__(self) -> int:
        return len(self.buckets)

    def hit(self, key: str, *, capacity: int, window: float, now: float) -> RateDecision:
        allowed, wait = self.buckets.hit(key, capacity=capacity, window=window, now=now)
        return _ADMITTED if allowed else RateDecision(False, wait)


@functools.lru_cache(maxsize=4096)  # the same clients come back: hash each key once
def _store_key(key: str) -> str:
    """A fixed-size store key: bucket values (a header...) may be long."""
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def load(previous: int, current: int, fraction: float) -> float:
    """The sliding-window estimate, `fraction` (0..1) into the current window."""
    return previous * (1.0 - fraction) + current


def retry_after(
    previous: int, current: int, fraction: float, capacity: int, window: float
) -> float:
    """Seconds from now until `load(...) + 1 <= capacity`, with no new request."""
    room = capacity - 1 - current  # what the previous window may still weigh
    if room >= 0 and previous > 0:
        # Later in this window: previous * (1 - g) <= room.
        g = 1.0 - room / previous
        if g < 1.0:
            return max(0.0, (g - fraction) * window)
    # The next window: today's `current` becomes `previous`.
    wait_to_next = (1.0 - fraction) * window
    if current <= capacity - 1:
        return wait_to_next
    return wait_to_next + (1.0 - (capacity - 1) / current) * window


class _Bucket:
    __slots__ = ("current", "index", "previous")

    def __init__(self, index: int) -> None:
        self.index = index  # the window `current` counts
        self.previous = 0
        self.current = 0

    def roll(self, index: int) -> None:
        if index == self.index:
            return
        self.previous = self.current if index == self.index + 1 else 0
        self.current = 0
        self.index = index


class MemoryStore:
    """Buckets in this process (per edge worker, like the public gateway's
    "per ingress server" capacity). Not shared between threads: the edge
    runs every policy on one trio thread."""

    DEFAULT_MAX_BUCKETS = 100_000

    def __init__(self, *, max_buckets: int = DEFAULT_MAX_BUCKETS) -> None:
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def hit(self, key: str, *, capacity: int, window: float, now: float) -> RateDecision:
        key = _store_key(key)
        index = math.floor(now / window)
        bucket = self._buckets.get(key)
        if bucket is None:
            self._expire(index)  # memory only grows here, so only here it is reclaimed
            bucket = self._buckets[key] = _Bucket(index)
            if len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            if bucket.index != index:
                bucket.roll(index)
        fraction = (now - index * window) / window
        slack = _EPSILON * (1 + capacity)  # float noise, relative to the counts compared
        if load(bucket.previous, bucket.current, fraction) + 1 <= capacity + slack:
            bucket.current += 1
            return _ADMITTED
        wait = retry_after(bucket.previous, bucket.current, fraction, capacity, window)
        return RateDecision(False, wait)

    def _expire(self, index: int, budget: int = 2) -> None:
        """Drop up to `budget` least recently used buckets that are empty by
        now (no request in this window or the previous one): amortised O(1)."""
        buckets = self._buckets
        while budget and buckets:
            key, oldest = next(iter(buckets.items()))
            if oldest.index >= index - 1:
                return
            del buckets[key]
            budget -= 1
