"""Audit events of the admin API, in the public event envelope:

    {"event_id": "ev_...", "event_type": "credential_created.v0",
     "event_timestamp": "2026-12-07T03:01:02.345Z",
     "principal": {"id": "ak_...", "type": "api_key", "role": "admin"},
     "object": {... the resource as the API shows it, never a token ...}}

One event per mutation (`<resource>_created|updated|deleted.v0`,
`tunnel_session_stopped.v0`) and one per use of an API key
(`api_key_used.v0`: method, path, status; refused keys too, with the id
the caller claimed). Written as JSON Lines through `edgeward.linefile`, so
a slow disk never blocks the API; later slices add syslog and HTTP sinks
behind the same `Audit.emit`.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgeward.linefile import Output, json_line, open_output, printable, release, rfc3339

log = logging.getLogger("edgeward.admin")
WHAT = "audit events"
RECENT = 1000  # events kept in memory: the console's audit page shows these


@dataclass(frozen=True, slots=True)
class Principal:
    id: str  # the API key's id ("" when none was presented)
    type: str = "api_key"
    role: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.role is not None:
            out["role"] = self.role
        return out


@dataclass(frozen=True, slots=True)
class AuditEvent:
    event_type: str
    object: Mapping[str, Any]
    principal: Principal
    event_id: str = field(default_factory=lambda: "ev_" + secrets.token_hex(12))
    time: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "event_timestamp": rfc3339(self.time),
            "principal": self.principal.as_dict(),
            "object": dict(self.object),
        }


class _Format:
    def json(self, event: AuditEvent) -> str:
        return json_line(event.as_dict())

    def console(self, event: AuditEvent) -> str:
        return (
            f"{rfc3339(event.time)} audit {event.event_type} principal={event.principal.id}"
            f" object={printable(json_line(event.object))}"
        )


FORMAT = _Format()


class Audit:
    """Writes audit events to its destinations (none: kept in `recent` only)."""

    def __init__(self, targets: Sequence[str]) -> None:
        self._outputs: list[Output] = [open_output(t, what=WHAT, log=log) for t in targets]
        self.recent: list[AuditEvent] = []  # the last RECENT, for tests and the console

    def emit(self, event: AuditEvent) -> None:
        for output in self._outputs:
            output.write(event, FORMAT)
        self.recent.append(event)
        del self.recent[:-RECENT]

    def close(self) -> None:
        for output in self._outputs:
            release(output, WHAT)
        self._outputs = []


__all__ = ["Audit", "AuditEvent", "Principal"]
