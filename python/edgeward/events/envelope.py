"""The public event envelope every producer publishes in:

    {"event_id": "ev_7c1f...", "event_type": "credential_created.v0",
     "event_timestamp": "2026-12-07T03:01:02.345Z",
     "principal": {"id": "ak_...", "type": "api_key", "role": "admin"},
     "object": {... what happened to, never a secret ...}}

`event_type` is `<object>_<what happened>.v0`, as the public API names its
events; a change to an event's shape makes a `.v1`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edgeward.linefile import rfc3339


@dataclass(frozen=True, slots=True)
class Principal:
    """Who did it: an API key, an authtoken (an agent), a client address."""

    id: str  # "" when none was presented
    type: str = "api_key"
    role: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.role is not None:
            out["role"] = self.role
        return out


@dataclass(frozen=True, slots=True)
class Event:
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


__all__ = ["Event", "Principal"]
