"""Agent events: a line per session and endpoint change, written where the
edge's policy decision events go (`events:` in edge.yml, else
``EDGEWARD_POLICY_EVENTS``, else stdout), so a security team reads one
stream: who connected from where with which authtoken, what each agent
bound, and every refused bind with the rule set that refused it.

    {"time": "...Z", "event": "agent_bind_refused", "authtoken": "at_...",
     "session": "ses_...", "client_ip": "192.0.2.7", "url": "https://bob.internal",
     "error_code": "ERR_NGROK_316", "reason": "bob.internal: refused: not allowed by
     the authtoken's ACL (bind:alice.internal)"}
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from edgeward import events as bus
from edgeward.linefile import Output, json_line, open_output, printable, rfc3339

log = logging.getLogger("edgeward.agents")
WHAT = "agent events"

CONNECTED = "agent_connected"
DISCONNECTED = "agent_disconnected"
AUTH_REFUSED = "agent_auth_refused"
BOUND = "agent_bind"
BIND_REFUSED = "agent_bind_refused"
UNBOUND = "agent_unbind"
RESERVED = "agent_endpoint_reserved"  # the agent went away: the grace window starts
WITHDRAWN = "agent_endpoint_withdrawn"
REVOKED = "agent_revoked"  # its authtoken was revoked or changed: disconnected

# The same events on the event bus, in the public envelope (docs/control-plane.md).
EVENT_TYPES = {
    CONNECTED: "tunnel_session_started.v0",
    DISCONNECTED: "tunnel_session_ended.v0",
    AUTH_REFUSED: "tunnel_session_refused.v0",
    BOUND: "endpoint_bound.v0",
    BIND_REFUSED: "endpoint_bind_refused.v0",
    UNBOUND: "endpoint_unbound.v0",
    RESERVED: "endpoint_reserved.v0",
    WITHDRAWN: "endpoint_withdrawn.v0",
    REVOKED: "tunnel_session_revoked.v0",
}


@dataclass(frozen=True, slots=True)
class AgentEvent:
    event: str
    reason: str = ""
    authtoken: str | None = None
    session: str | None = None
    client_ip: str | None = None
    url: str | None = None
    endpoint_id: str | None = None
    error_code: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"time": rfc3339(self.time), "event": self.event}
        for key in ("authtoken", "session", "client_ip", "url", "endpoint_id", "error_code"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.reason:
            out["reason"] = self.reason
        out.update(self.extra)
        return out

    def envelope(self) -> bus.Event:
        """This event in the public envelope: the principal is the authtoken
        (the agent), the object everything else."""
        obj = {k: v for k, v in self.as_dict().items() if k not in ("time", "event")}
        kind = EVENT_TYPES.get(self.event, f"{self.event}.v0")
        return bus.Event(
            kind, obj, bus.Principal(self.authtoken or "", "credential"), time=self.time
        )


class _Format:
    def json(self, event: AgentEvent) -> str:
        return json_line(event.as_dict())

    def console(self, event: AgentEvent) -> str:
        fields = " ".join(
            f"{k}={printable(str(v))}" for k, v in event.as_dict().items() if k not in ("time",)
        )
        return f"{rfc3339(event.time)} agent {fields}"


FORMAT = _Format()


class AgentEvents:
    """Writes agent events to the edge's event targets (none: dropped)."""

    def __init__(self, targets: Sequence[str] | None) -> None:
        if targets is None:
            spec = os.environ.get("EDGEWARD_POLICY_EVENTS", "stdout")
            targets = [t.strip() for t in spec.split(",") if t.strip()]
        self._outputs: list[Output] = [open_output(t, what=WHAT, log=log) for t in targets]
        self.recent: list[AgentEvent] = []  # the last few, for tests and the log

    def emit(self, event: AgentEvent) -> None:
        for output in self._outputs:
            output.write(event, FORMAT)
        if bus.current() is not None:
            bus.publish(event.envelope())
        self.recent.append(event)
        del self.recent[:-64]
