"""Audit events of the admin API, in the public event envelope
(`edgeward.events.envelope`):

    {"event_id": "ev_...", "event_type": "credential_created.v0",
     "event_timestamp": "2026-12-07T03:01:02.345Z",
     "principal": {"id": "ak_...", "type": "api_key", "role": "admin"},
     "object": {... the resource as the API shows it, never a token ...}}

One event per mutation (`<resource>_created|updated|deleted.v0`,
`tunnel_session_stopped.v0`) and one per use of an API key
(`api_key_used.v0`: method, path, status; refused keys too, with the id
the caller claimed). Every event goes through the event bus
(`edgeward.events`): to the event destinations whose subscriptions match,
and to the `audit_log:` outputs, which are static JSON Lines destinations
subscribed to the admin API's own event types.
"""

from __future__ import annotations

from collections.abc import Sequence

from edgeward.events import spec
from edgeward.events.bus import Bus
from edgeward.events.envelope import Event, Principal

AuditEvent = Event  # the admin API's name for an event it makes
TYPES = (
    "credential_*",
    "api_key_*",
    "tunnel_session_stopped.v0",
    "event_destination_*",
    "event_subscription_*",
    "ip_policy_*",
    "ip_restriction_*",
    "endpoint_created.v0",  # not endpoint_*: agents' endpoint_bound... are the data plane's
    "endpoint_updated.v0",
    "endpoint_deleted.v0",
    "endpoint_inspection_updated.v0",  # the traffic inspector (admin.inspector_api)
    "endpoint_capture_replayed.v0",
    "endpoint_captures_cleared.v0",
    "vault_*",
    "secret_*",
    "user_*",
    "invitation_*",
    "login_*",
    "logout.v0",
    "session_used.v0",
    "break_glass_login.v0",
)
"""What `audit_log:` receives: the admin API's own events."""
RECENT = 1000  # events kept in memory: the console's audit page shows these


def static_destinations(
    targets: Sequence[str],
) -> list[tuple[spec.DestinationSpec, spec.SubscriptionSpec]]:
    """`audit_log:` outputs as bus destinations, each with its subscription."""
    out = []
    for i, target in enumerate(targets):
        id = f"audit_log_{i}"
        out.append(
            (
                spec.destination(id, "json", {"file": {"path": target}}, "audit_log"),
                spec.subscription(f"{id}_all", list(TYPES), [id]),
            )
        )
    return out


class Audit:
    """Publishes the admin API's events to the bus (none: kept in `recent` only)."""

    def __init__(self, bus: Bus | None = None) -> None:
        self.bus = bus
        self.recent: list[Event] = []  # the last RECENT, for tests and the console

    def emit(self, event: Event) -> None:
        if self.bus is not None:
            self.bus.publish(event)
        self.recent.append(event)
        del self.recent[:-RECENT]


__all__ = ["TYPES", "Audit", "AuditEvent", "Principal", "static_destinations"]
