"""Circuit-breaker state (`circuit-breaker`), sans-IO: every call is given
the time, so tests drive it with a fake clock.

A breaker watches the outcomes of the requests it let through (an upstream
answer of 5xx, or the edge's own 502/504 when the upstream failed, is an
error; see `outcome`) over a rolling window of `window` seconds cut into
`buckets` slots, and moves between three states:

    state      event                                              next
    closed     outcome recorded (of any kind); in the window,
               volume >= volume_threshold and
               errors / volume >= error_threshold                  open
    open       a request arrives `tripped` seconds after opening   half_open
    half_open  the probe succeeded                                 closed (window cleared)
    half_open  the probe failed                                    open (again for `tripped`)

While open every request is refused. Half-open lets one request through at
a time, the probe; the others are refused until it completes (a probe that
never reports back is replaced after `tripped` seconds). An outcome with no
upstream answer (the policy answered, the client went away) counts neither
way; a probe ending so frees its slot. Outcomes of requests admitted before
the breaker opened are ignored once it has.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum

from edgeward.hooks import ExchangeSummary


class State(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Outcome(Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"  # no upstream answer: counts neither way


def outcome(summary: ExchangeSummary) -> Outcome:
    """What a completed exchange tells the breaker: an error is a 5xx the
    client got for a forwarded request (the upstream's, or the edge's 502
    or 504 when the upstream failed)."""
    if summary.upstream is None or summary.status == 0:
        return Outcome.UNKNOWN
    return Outcome.FAILURE if summary.status >= 500 else Outcome.SUCCESS


@dataclass(frozen=True, slots=True)
class Settings:
    error_threshold: float = 0.5  # 0..1: errors / volume that opens the circuit
    volume_threshold: int = 10  # outcomes in the window before the ratio counts
    window: float = 10.0  # seconds of outcomes kept
    tripped: float = 10.0  # seconds the circuit stays open
    buckets: int = 10  # slots of the window


@dataclass(frozen=True, slots=True)
class Admission:
    allowed: bool
    probe: bool = False  # the half-open state's test request
    retry_after: float = 0.0  # refused: seconds until a probe may go through


_ADMITTED = Admission(True)


class Breaker:
    """One circuit (an endpoint's, or a `bucket`'s)."""

    __slots__ = (
        "_errors",
        "_slots",
        "_totals",
        "opened_at",
        "probe_since",
        "settings",
        "state",
    )

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state = State.CLOSED
        self.opened_at = 0.0
        self.probe_since: float | None = None  # when the probe in flight was admitted
        n = settings.buckets
        self._slots = [-1] * n  # which bucket (time // width) each slot counts
        self._totals = [0] * n
        self._errors = [0] * n

    # --- decisions --------------------------------------------------------------

    def admit(self, now: float) -> Admission:
        """Whether a request may go to the upstream now."""
        tripped = self.settings.tripped
        if self.state is State.CLOSED:
            return _ADMITTED
        if self.state is State.OPEN:
            if now < self.opened_at + tripped:
                return Admission(False, retry_after=self.opened_at + tripped - now)
            self.state = State.HALF_OPEN
            self.probe_since = None
        if self.probe_since is not None and now < self.probe_since + tripped:
            return Admission(False, retry_after=self.probe_since + tripped - now)
        self.probe_since = now
        return Admission(True, probe=True)

    def record(self, result: Outcome, *, probe: bool, now: float) -> None:
        """The outcome of a request `admit` let through."""
        if self.state is State.CLOSED:
            if probe:
                return
            if result is not Outcome.UNKNOWN:
                self._count(result is Outcome.FAILURE, now)
            # even an outcome that counts neither way looks again: successes
            # leaving the window can put the errors over the threshold
            if self._tripped(now):
                self._open(now)
            return
        if not probe or self.state is not State.HALF_OPEN or self.probe_since is None:
            return  # admitted before the circuit opened
        if result is Outcome.UNKNOWN:
            self.probe_since = None  # the next request probes
        elif result is Outcome.SUCCESS:
            self.state = State.CLOSED
            self.probe_since = None
            self._clear()
        else:
            self._open(now)

    def volume(self, now: float) -> tuple[int, int]:
        """(outcomes, errors) in the window ending at `now`."""
        current = self._bucket(now)
        n = self.settings.buckets
        total = errors = 0
        for i in range(n):
            if current - n < self._slots[i] <= current:
                total += self._totals[i]
                errors += self._errors[i]
        return total, errors

    # --- internals ----------------------------------------------------------------

    def _bucket(self, now: float) -> int:
        return math.floor(now * self.settings.buckets / self.settings.window)

    def _count(self, error: bool, now: float) -> None:
        bucket = self._bucket(now)
        i = bucket % self.settings.buckets
        if self._slots[i] != bucket:
            self._slots[i] = bucket
            self._totals[i] = self._errors[i] = 0
        self._totals[i] += 1
        self._errors[i] += error

    def _tripped(self, now: float) -> bool:
        total, errors = self.volume(now)
        s = self.settings
        return total >= s.volume_threshold and errors >= s.error_threshold * total

    def _open(self, now: float) -> None:
        self.state = State.OPEN
        self.opened_at = now
        self.probe_since = None

    def _clear(self) -> None:
        n = self.settings.buckets
        self._slots = [-1] * n
        self._totals = [0] * n
        self._errors = [0] * n


class Breakers:
    """The circuits of one action by key, least recently used out beyond
    `max_keys` (a `bucket` computed from request data cannot grow memory)."""

    def __init__(self, settings: Settings, *, max_keys: int = 10_000) -> None:
        self.settings = settings
        self.max_keys = max_keys
        self._by_key: OrderedDict[str, Breaker] = OrderedDict()

    def get(self, key: str) -> Breaker:
        breaker = self._by_key.get(key)
        if breaker is None:
            breaker = self._by_key[key] = Breaker(self.settings)
            if len(self._by_key) > self.max_keys:
                self._by_key.popitem(last=False)
        else:
            self._by_key.move_to_end(key)
        return breaker

    def __len__(self) -> int:
        return len(self._by_key)


__all__ = ["Admission", "Breaker", "Breakers", "Outcome", "Settings", "State", "outcome"]
