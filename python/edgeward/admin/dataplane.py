"""What the admin API reads from and does to the running edge, given by the
server that serves it (so this package never imports the proxy): the
current config (static endpoints), the agents' registry (sessions and
agent-bound endpoints), and stopping a session.

Credentials need nothing here: a change is a write to the state store, and
the edge's watcher applies it (`store.trio_adapter.AsyncStore.watch`: a
revoked or changed authtoken's agents are dropped within about 250 ms).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgeward.agents.registry import Registry
from edgeward.config import EdgeConfig


@dataclass(frozen=True, slots=True)
class DataPlane:
    config: Callable[[], EdgeConfig]
    registry: Callable[[], Registry[Any] | None]  # None: no agent ingress
    stop_session: Callable[[str], bool]  # False: no such session


__all__ = ["DataPlane"]
