"""Decision events: one JSON object per line to each configured sink.

An event is emitted for every terminating decision, every run-time error and
every `log` action. Events carry what a security team needs to audit a
decision (which endpoint, rule and action, the verdict and why, the client
address, the request id) and never a secret: actions write reasons that name
the failure, not the credential.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from edgeward.linefile import LineFile


@dataclass(frozen=True, slots=True)
class PolicyEvent:
    time: float  # unix time
    endpoint: str | None
    phase: str
    rule: str  # the rule's name, else "on_http_request[2]"
    action: str | None  # action type; None for an expression error
    verdict: str  # deny, respond, redirect, close, error, continue, log
    reason: str
    client_ip: str
    request_id: str | None
    status: int | None = None
    error_code: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(self.time, UTC).isoformat(timespec="milliseconds"),
            "endpoint": self.endpoint,
            "phase": self.phase,
            "rule": self.rule,
            "action": self.action,
            "verdict": self.verdict,
            "reason": self.reason,
            "client_ip": self.client_ip,
            "request_id": self.request_id,
        }
        if self.status is not None:
            out["status"] = self.status
        if self.error_code is not None:
            out["error_code"] = self.error_code
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), default=str, ensure_ascii=False, separators=(",", ":"))


class EventSink(Protocol):
    def emit(self, event: PolicyEvent) -> None: ...


class NullSink:
    def emit(self, event: PolicyEvent) -> None:
        pass


class ListSink:
    """Keeps events in memory (tests, `policy test`)."""

    def __init__(self) -> None:
        self.events: list[PolicyEvent] = []

    def emit(self, event: PolicyEvent) -> None:
        self.events.append(event)


log = logging.getLogger("edgeward.policy")


class JsonLinesSink:
    """Writes each event as one JSON line and flushes, so a crash loses at
    most the line being written. A lock keeps lines whole across threads.

    The file opens at the first event and closes when the sink is collected
    (a reload that no longer names it); a failed write is dropped and logged
    once (`edgeward.linefile`): recording a decision never changes it."""

    def __init__(self, target: TextIO | Path) -> None:
        self._file = LineFile(target, what="policy events", log=log)
        self._lock = threading.Lock()
        weakref.finalize(self, self._file.close)

    def emit(self, event: PolicyEvent) -> None:
        line = event.to_json() + "\n"
        with self._lock:
            self._file.write(line)


class FanOutSink:
    def __init__(self, sinks: Iterable[EventSink]) -> None:
        self._sinks = tuple(sinks)

    def emit(self, event: PolicyEvent) -> None:
        for sink in self._sinks:
            sink.emit(event)


def open_event_sink(*targets: str | Path) -> EventSink:
    """A sink writing to each target: ``"stdout"``, ``"stderr"`` or a file
    path (appended to, created if missing, at the first event)."""
    return fan_out([_target_sink(target) for target in targets])


def fan_out(sinks: Sequence[EventSink]) -> EventSink:
    """One sink for all of `sinks` (none: events are dropped)."""
    if not sinks:
        return NullSink()
    return sinks[0] if len(sinks) == 1 else FanOutSink(sinks)


def _target_sink(target: str | Path) -> JsonLinesSink:
    if target == "stdout":
        return JsonLinesSink(sys.stdout)
    if target == "stderr":
        return JsonLinesSink(sys.stderr)
    return JsonLinesSink(Path(target))
