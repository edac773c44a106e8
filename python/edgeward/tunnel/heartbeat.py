"""Heartbeats (stream type 0xFFFFFFFF), sans-IO: times are passed in.

The requester writes a random 4-byte id every `interval` (the first at
once) and expects it echoed; the responder echoes what it reads. The ngrok
SDK is a requester and also answers the server's beats. A wrong echo ends
the SDK's requester; a missing one is noticed `interval + tolerance` after
the last answer. On the server, `HeartbeatMonitor` turns the agent's own
beats into a liveness deadline, so a dead agent is noticed without pinging
it.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from edgeward.tunnel.errors import MessageError

ID_SIZE = 4


class HeartbeatRequester:
    __slots__ = (
        "_echo",
        "_last_answer",
        "_next_beat",
        "_outstanding",
        "_sent_at",
        "_token",
        "interval",
        "tolerance",
    )

    def __init__(
        self,
        interval: float,
        tolerance: float,
        *,
        token: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.interval = interval
        self.tolerance = tolerance
        self._token = token
        self._next_beat = 0.0
        self._last_answer = 0.0
        self._outstanding: bytes | None = None
        self._sent_at = 0.0
        self._echo = b""

    def start(self, now: float) -> None:
        self._next_beat = now
        self._last_answer = now

    def poll(self, now: float) -> bytes | None:
        """The id to write now, if a beat is due."""
        if self._outstanding is not None or now < self._next_beat:
            return None
        self._outstanding = self._token(ID_SIZE)
        self._sent_at = now
        self._next_beat = now + self.interval
        return self._outstanding

    def on_data(self, data: bytes, now: float) -> list[float]:
        """Echo bytes arrived: the latencies of the beats they complete."""
        self._echo += data
        latencies = []
        while len(self._echo) >= ID_SIZE:
            echo, self._echo = self._echo[:ID_SIZE], self._echo[ID_SIZE:]
            if echo != self._outstanding:
                raise MessageError("heartbeat", "the echo does not match the id sent")
            self._outstanding = None
            self._last_answer = now
            latencies.append(now - self._sent_at)
        return latencies

    def timed_out(self, now: float) -> bool:
        return now > self._last_answer + self.interval + self.tolerance

    def deadline(self) -> float:
        """When `poll` or `timed_out` may next change their answer."""
        expiry = self._last_answer + self.interval + self.tolerance
        if self._outstanding is None:
            return min(self._next_beat, expiry)
        return expiry


class HeartbeatMonitor:
    """The peer's beats as a liveness deadline."""

    __slots__ = ("_last", "_pending", "interval", "tolerance")

    def __init__(self, interval: float, tolerance: float, now: float) -> None:
        self.interval = interval
        self.tolerance = tolerance
        self._last = now
        self._pending = 0  # bytes of a beat seen so far

    def on_data(self, size: int, now: float) -> None:
        self._pending += size
        if self._pending >= ID_SIZE:
            self._pending %= ID_SIZE
            self._last = now

    def deadline(self) -> float:
        return self._last + self.interval + self.tolerance

    def timed_out(self, now: float) -> bool:
        return now > self.deadline()
