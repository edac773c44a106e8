"""Decision events: one JSON object per line to each configured sink.

An event is emitted for every terminating decision, every run-time error and
every `log` action. Events carry what a security team needs to audit a
decision (which endpoint, rule and action, the verdict and why, the client
address, the request id) and never a secret: actions write reasons that name
the failure, not the credential.
"""

from __future__ import annotations

import contextlib
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

    A file is opened (for appending) at the first event, so that loading a
    config (`edgeward check`) creates nothing, and closed when the sink is
    collected (a reload that no longer names it). A sink that cannot write
    (a full disk, a closed stream) drops the event and logs once until a
    write succeeds again: recording a decision never changes it."""

    def __init__(self, target: TextIO | Path) -> None:
        self._path = target if isinstance(target, Path) else None
        self._stream = None if isinstance(target, Path) else target
        # for the log: the path, <stdout>, <stderr>
        self.name = str(target if self._path else getattr(target, "name", target))
        self._lock = threading.Lock()
        self._failing = False

    def emit(self, event: PolicyEvent) -> None:
        line = event.to_json() + "\n"
        with self._lock:
            try:
                stream = self._stream if self._stream is not None else self._open()
                stream.write(line)
                stream.flush()
            except (OSError, ValueError) as exc:  # ValueError: closed, or cannot encode
                if not self._failing:
                    log.error("policy events: cannot write to %s (dropped): %s", self.name, exc)
                self._failing = True
            else:
                self._failing = False

    def _open(self) -> TextIO:
        assert self._path is not None
        stream = self._stream = self._path.open("a", encoding="utf-8")
        weakref.finalize(self, _close_quietly, stream)
        return stream


def _close_quietly(stream: TextIO) -> None:
    """Closing flushes what a failed write left buffered; when that fails
    too (the disk is still full) the loss was logged already."""
    with contextlib.suppress(OSError):
        stream.close()


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
