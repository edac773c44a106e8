"""What the admin API reads from and does to the running edge, given by the
server that serves it (so this package never imports the proxy): the
current config (static endpoints), the agents' registry (sessions and
agent-bound endpoints), and stopping a session; the control plane's
snapshot in force (IP restrictions), a check of a traffic policy as
the edge would compile it (endpoints made through the API), and the
traffic inspector's captures (read, clear, replay).

Credentials and the control plane's resources need nothing more here: a
change is a write to the state store, and the edge's watchers apply it
(`store.trio_adapter.AsyncStore.watch`, within about 250 ms).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edgeward.agents.registry import Registry
from edgeward.config import EdgeConfig
from edgeward.control import ControlSnapshot
from edgeward.inspection import ReplayRefused


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    """One diagnostic of a traffic policy, as `edgeward policy check`
    prints it (`text`) and in parts."""

    severity: str  # error, warning
    message: str
    text: str
    line: int | None = None
    column: int | None = None
    path: str | None = None


async def _no_replay(endpoint_id: str, capture_id: str) -> dict[str, Any]:
    raise ReplayRefused("this edge does not inspect traffic")


# (policy text, vaults) -> problems; an error among them refuses the policy
PolicyCheck = Callable[[str, Mapping[str, Mapping[str, str]]], list[PolicyProblem]]


def _no_check(text: str, vaults: Mapping[str, Mapping[str, str]]) -> list[PolicyProblem]:
    return [PolicyProblem("error", "this edge compiles no traffic policies", "traffic_policy")]


@dataclass(frozen=True, slots=True)
class DataPlane:
    config: Callable[[], EdgeConfig]  # edge.yml's (static endpoints only)
    registry: Callable[[], Registry[Any] | None]  # None: no agent ingress
    stop_session: Callable[[str], bool]  # False: no such session
    control: Callable[[], ControlSnapshot] = field(default=ControlSnapshot)
    check_policy: PolicyCheck = field(default=_no_check)
    ingress_address: Callable[[], tuple[str, int] | None] = field(default=lambda: None)
    # The traffic inspector's captures on this node, by endpoint id (newest
    # first, as the API shows them); clearing gives how many went; a replay
    # gives the capture of the replayed request, or raises `ReplayRefused`.
    captures: Callable[[str], list[dict[str, Any]]] = field(default=lambda _id: [])
    clear_captures: Callable[[str], int] = field(default=lambda _id: 0)
    replay: Callable[[str, str], Awaitable[dict[str, Any]]] = field(default=_no_replay)


__all__ = ["DataPlane", "PolicyCheck", "PolicyProblem"]
