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
import weakref
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from edgeward import events as bus
from edgeward.linefile import open_output, printable, release, rfc3339

DECISIONS: Counter[tuple[str | None, str, str | None, str]] = Counter()
"""Events made in this process by (endpoint, rule, action, verdict): plain
counts, read by the proxy's metrics at scrape time."""


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

    def __post_init__(self) -> None:
        # every decision is counted once, whatever the sinks (the metrics read this)
        DECISIONS[self.endpoint, self.rule, self.action, self.verdict] += 1

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "time": rfc3339(self.time),
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
WHAT = "policy events"


class _EventFormat:
    """Lines of an event; run on the output's writer thread."""

    def json(self, event: PolicyEvent) -> str:
        return event.to_json()

    def console(self, event: PolicyEvent) -> str:
        extra = f" status={event.status}" if event.status is not None else ""
        if event.error_code:
            extra += f" error={event.error_code}"
        return (
            f"{rfc3339(event.time)} policy {event.verdict} endpoint={event.endpoint}"
            f" rule={printable(event.rule)} action={event.action} phase={event.phase}"
            f" client={event.client_ip}{extra} id={event.request_id}"
            f" reason={printable(event.reason)}"
        )


EVENT_FORMAT = _EventFormat()


class JsonLinesSink:
    """Writes each event as one line (JSON, or text on a terminal) to a
    shared `edgeward.linefile` output: queued, never blocking the caller,
    in order with the access log when both go to the same target.

    The file opens at the first event and is released when the sink is
    collected (a reload that no longer names it); a failed write is dropped
    and logged once: recording a decision never changes it."""

    def __init__(self, target: TextIO | Path | str) -> None:
        self._output = open_output(target, what=WHAT, log=log)
        weakref.finalize(self, release, self._output, WHAT)

    def emit(self, event: PolicyEvent) -> None:
        self._output.write(event, EVENT_FORMAT)

    def flush(self) -> bool:
        """Wait until the events emitted so far are written (tests, tools)."""
        return self._output.flush()


DENIALS = frozenset({"deny", "close"})
"""The verdicts published on the event bus as `policy_denied.v0`."""


class BusSink:
    """Publishes every deny to the process's event bus (`edgeward.events`):
    a `policy_denied.v0` event, the client's address as principal. A no-op
    when the edge runs no bus (no `api:`)."""

    def emit(self, event: PolicyEvent) -> None:
        if event.verdict not in DENIALS or bus.current() is None:
            return
        obj = {k: v for k, v in event.as_dict().items() if k != "time"}
        principal = bus.Principal(event.client_ip, "client")
        bus.publish(bus.Event("policy_denied.v0", obj, principal, time=event.time))


BUS_SINK = BusSink()


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
    return JsonLinesSink(target if target in ("stdout", "stderr") else Path(target))
