"""The store under trio: blocking calls run in worker threads, at most
`limiter` at once, and a watcher that republishes a snapshot when the
store's revision moves. The only module of `edgeward.store` that imports
trio (tests/test_architecture.py).

    async with trio.open_nursery() as nursery:
        first = await nursery.start(astore.watch, load_snapshot, publish)

Why polling: one `SELECT revision` every 250 ms costs a worker thread a few
tens of microseconds, works the same for a write from any process (the CLI,
another edge node later) and on any database; SQLite's `data_version`
pragma would need a dedicated connection and says nothing on PostgreSQL.
A revocation therefore reaches `publish` within about `interval` plus the
time to build one snapshot.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import trio

from edgeward.store.errors import StoreError
from edgeward.store.store import Store

T = TypeVar("T")
log = logging.getLogger("edgeward.store")

POLL_INTERVAL = 0.25


class AsyncStore:
    """A `Store` for trio code. One worker thread at a time by default:
    store calls are short, and SQLite serialises writers anyway."""

    __slots__ = ("limiter", "store")

    def __init__(self, store: Store, limiter: trio.CapacityLimiter | None = None) -> None:
        self.store = store
        self.limiter = limiter if limiter is not None else trio.CapacityLimiter(1)

    async def run(self, call: Callable[[Store], T]) -> T:
        """`call(store)` in a worker thread (cancellable: the thread finishes
        its transaction, the result is dropped)."""
        return await trio.to_thread.run_sync(
            call, self.store, limiter=self.limiter, abandon_on_cancel=True
        )

    async def revision(self) -> int:
        return await self.run(Store.revision)

    async def watch(
        self,
        build: Callable[[Store], T],
        publish: Callable[[T], None],
        *,
        interval: float = POLL_INTERVAL,
        task_status: trio.TaskStatus[T] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Build the first value (its errors propagate: the caller cannot
        start without it), report it through `task_status`, then poll the
        revision every `interval` seconds and `publish(build(store))` after
        each change. A failed poll or build is logged (once per outage) and
        retried; the last good value stays published meanwhile."""
        seen = await self.revision()
        first = await self.run(build)
        task_status.started(first)
        failing = False
        while True:
            await trio.sleep(interval)
            try:
                now = await self.revision()
                if now != seen:
                    value = await self.run(build)
                    seen = now  # read before building: a change during the build is seen next time
                    publish(value)
            except StoreError as exc:
                if not failing:
                    log.warning("state store: %s (keeping the last snapshot, retrying)", exc)
                failing = True
            else:
                if failing:
                    log.warning("state store: readable again")
                failing = False


__all__ = ["POLL_INTERVAL", "AsyncStore"]
