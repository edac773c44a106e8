"""Coarse timeouts for the hot path without a cancel scope per request.

A trio cancel scope per wait costs several microseconds (registering and
unregistering its deadline); at thousands of requests per second that is a
fifth of the time. Instead, each connection (or HTTP/2 stream) owns one
`Timer`; arming it is a float assignment, and one `Watchdog` task checks
every timer a few times a second and fires the expired ones. Timeouts are
therefore precise to `TICK` seconds, which is plenty for limits measured in
seconds. The clock is `time.monotonic` (one C call), not trio's: a timer
measures real time, and arming it runs on every request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import trio

TICK = 0.25
_now = time.monotonic


class Timer:
    __slots__ = ("callback", "deadline")

    def __init__(self) -> None:
        self.deadline = math.inf
        self.callback: Callable[[], object] | None = None

    def arm(self, seconds: float, callback: Callable[[], object]) -> None:
        self.deadline = _now() + seconds
        self.callback = callback

    def disarm(self) -> None:
        self.deadline = math.inf


class Watchdog:
    def __init__(self) -> None:
        self.timers: set[Timer] = set()

    def add(self) -> Timer:
        timer = Timer()
        self.timers.add(timer)
        return timer

    def remove(self, timer: Timer) -> None:
        self.timers.discard(timer)

    async def run(self) -> None:
        while True:
            await trio.sleep(TICK)
            now = _now()
            expired = [t for t in self.timers if t.deadline <= now]
            for timer in expired:
                timer.deadline = math.inf
                if timer.callback is not None:
                    timer.callback()
