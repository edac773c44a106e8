"""The bus inside `edgeward serve`: made at start, installed as the
process's bus (so the agent ingress and the policy engine publish to it),
and kept in step with the store's destinations and subscriptions by the
store's revision watcher (`AsyncStore.watch`, every 250 ms): a change made
through the API applies within a second, without a restart.

Static destinations (the API's `audit_log:` outputs) are added to what the
store holds; they cannot be changed through the API."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import trio

from edgeward.events import manage
from edgeward.events.bus import Bus, install
from edgeward.events.spec import DestinationSpec, SubscriptionSpec
from edgeward.store import Store
from edgeward.store.trio_adapter import AsyncStore

SPOOL = "spool"  # under the state directory
Loaded = tuple[list[DestinationSpec], list[SubscriptionSpec]]


class EventService:
    def __init__(
        self,
        store: Store,
        spool_dir: Path,
        static: Sequence[tuple[DestinationSpec, SubscriptionSpec]] = (),
    ) -> None:
        self.store = AsyncStore(store, trio.CapacityLimiter(1))
        self.static = list(static)
        self.bus = Bus(spool_dir)
        self._apply(manage.load(store))  # events published from now on go somewhere
        install(self.bus)

    def _apply(self, loaded: Loaded) -> None:
        destinations, subscriptions = loaded
        self.bus.configure(
            [d for d, _ in self.static] + destinations,
            [s for _, s in self.static] + subscriptions,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Watch the store until cancelled."""

        def publish(loaded: Loaded) -> None:
            self._apply(loaded)

        async with trio.open_nursery() as nursery:
            first = await nursery.start(self.store.watch, manage.load, publish)
            self._apply(first)
            task_status.started()

    def close(self) -> None:
        install(None)
        self.bus.close()


__all__ = ["SPOOL", "EventService"]
