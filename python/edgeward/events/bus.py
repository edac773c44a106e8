"""The event bus: producers `publish`, nothing waits, nothing is lost.

    publish (any thread, the event loop)  ->  bounded memory queue  ->  dispatcher thread
        -> each matching subscription's destinations' spools  ->  one sender thread each

`publish` renders the envelope and puts it on a bounded queue; it never
blocks. When the queue is full, events go to an overflow spool on disk
instead (a small append, only while the dispatcher is behind), and keep
going there until the dispatcher has caught up with it, so order is kept.
The dispatcher matches each event against the subscriptions and appends it
to the spool of every destination they name (once per destination); each
destination's sender delivers from its own spool (`delivery`), so a slow or
failing receiver holds up no other.

`configure` swaps destinations and subscriptions at run time (the store's
watcher calls it after an API change): a new destination starts a sender,
a removed one stops (its spool is deleted), a changed one restarts on the
same spool; subscriptions are swapped in one assignment.

`stats` is what `/metrics` shows of it (events published, and per spool the
events dropped because it was full and the bytes waiting in it).
"""

from __future__ import annotations

import json
import logging
import queue
import ssl
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from edgeward.events.delivery import BACKOFF_MAX, Delivery
from edgeward.events.envelope import Event
from edgeward.events.spec import DestinationSpec, SubscriptionSpec
from edgeward.events.spool import MAX_BYTES, Spool
from edgeward.linefile import json_line

log = logging.getLogger("edgeward.events")
MAX_QUEUED = 10_000
"""Events held in memory while the dispatcher is behind; past this, on disk."""
OVERFLOW = "_overflow"
"""The overflow spool's directory, and its name in `stats` (no destination
can have it: `configure` refuses one whose spool would be this directory)."""


class SpoolStats(NamedTuple):
    """One spool's counts: a destination's, or the bus's overflow."""

    destination: str  # the destination's id, or OVERFLOW
    dropped: int  # events refused because the spool was full
    pending_bytes: int  # bytes waiting to be taken


class BusStats(NamedTuple):
    published: int
    spools: tuple[SpoolStats, ...]  # the overflow's first, then each destination's


class Bus:
    def __init__(
        self,
        spool_dir: Path,
        *,
        max_queued: int = MAX_QUEUED,
        backoff_max: float = BACKOFF_MAX,
        spool_max_bytes: int = MAX_BYTES,
    ) -> None:
        self.spool_dir = spool_dir
        spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.backoff_max = backoff_max
        self.spool_max_bytes = spool_max_bytes  # each spool's, the overflow's too
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(max_queued)
        self._lock = threading.Lock()
        self._overflow = Spool(spool_dir / OVERFLOW, max_bytes=spool_max_bytes)
        self._overflowing = self._overflow.pending > 0  # left by the last run
        self.overflowed = 0  # events that went to the overflow spool
        self.published = 0
        self.deliveries: dict[str, Delivery] = {}
        self.subscriptions: tuple[SubscriptionSpec, ...] = ()
        self.recent: list[dict[str, Any]] = []  # the last few events (tests, debugging)
        self._closed = False
        self._configured = threading.Event()  # no routing before the first `configure`
        self._thread = threading.Thread(target=self._run, name="edgeward-events", daemon=True)
        self._thread.start()

    # --- producers --------------------------------------------------------------------

    def publish(self, event: Event | Mapping[str, Any]) -> None:
        """Queue one event for its subscriptions; never blocks on a receiver."""
        data = event.as_dict() if isinstance(event, Event) else dict(event)
        with self._lock:
            if self._closed:
                return
            self.published += 1
            self.recent.append(data)
            del self.recent[:-64]
            if not self._overflowing:
                try:
                    self._queue.put_nowait(data)
                    return
                except queue.Full:
                    self._overflowing = True
                    log.warning("events: the dispatcher is behind: queueing events on disk")
            self.overflowed += 1
            self._overflow.append([json_line(data)])

    # --- configuration ------------------------------------------------------------------

    def configure(
        self, destinations: Iterable[DestinationSpec], subscriptions: Iterable[SubscriptionSpec]
    ) -> None:
        """Make these the destinations and subscriptions (from the dispatcher's
        next event on). Never waits for a sender: safe on the event loop. A
        destination whose client cannot be made (an unreadable CA file) is
        logged and left out (or keeps its previous settings); so is one
        whose spool would be the overflow's (its name is OVERFLOW's in `stats`)."""
        wanted = {d.id: d for d in destinations}
        with self._lock:
            current = dict(self.deliveries)
        deliveries: dict[str, Delivery] = {}
        for id, spec in wanted.items():
            old = current.get(id)
            if self._spool_path(id) == self._overflow.directory:
                log.error("event destination %s: cannot start: the overflow spool's name", id)
                continue
            try:
                if old is None:
                    deliveries[id] = Delivery(
                        spec,
                        self._spool_path(id),
                        backoff_max=self.backoff_max,
                        spool_max_bytes=self.spool_max_bytes,
                    )
                    continue
                if old.spec.key() != spec.key():
                    old.replace(spec)
            except (OSError, ValueError, ssl.SSLError) as exc:
                log.error("event destination %s: cannot start: %s", id, exc)
                if old is None:
                    continue
            deliveries[id] = old
        with self._lock:
            self.deliveries = deliveries
            self.subscriptions = tuple(subscriptions)
        self._configured.set()
        for id, delivery in current.items():
            if id not in deliveries:
                delivery.retire()

    def _spool_path(self, id: str) -> Path:
        return self.spool_dir / "".join(c if c.isalnum() or c in "_-." else "_" for c in id)

    # --- what /metrics reads ------------------------------------------------------------

    def stats(self) -> BusStats:
        """The counts as they are now, for a scrape on the event loop: ints
        read without the bus's lock (`publish` holds it over an overflow
        append), and the destinations of the last `configure` (it replaces
        the dict whole and never changes it), so a deleted one is gone."""
        overflow = self._overflow
        spools = [SpoolStats(OVERFLOW, overflow.dropped, overflow.pending)]
        for id, delivery in self.deliveries.items():
            spools.append(SpoolStats(id, delivery.spool.dropped, delivery.spool.pending))
        return BusStats(self.published, tuple(spools))

    # --- the dispatcher -----------------------------------------------------------------

    def _run(self) -> None:
        while not self._configured.wait(0.2):  # what the last run left waits for its routes
            if self._closed:
                return
        while True:
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                item = None
            if item is not None:
                try:
                    self._route([item])
                finally:
                    self._queue.task_done()
                continue
            with self._lock:
                if self._overflowing and self._overflow.pending == 0:
                    self._overflowing = False
                    log.warning("events: the dispatcher caught up")
                draining = self._overflowing
                closed = self._closed
            if draining:
                records, size = self._overflow.peek(1000, timeout=0)
                self._route([json.loads(r) for r in records])
                self._overflow.commit(size)
            elif closed and self._queue.empty():
                return

    def _route(self, events: list[dict[str, Any]]) -> None:
        with self._lock:
            subscriptions, deliveries = self.subscriptions, self.deliveries
        lines: dict[str, list[str]] = {}
        for event in events:
            targets: set[str] = set()
            for sub in subscriptions:
                if sub.matches(event):
                    targets.update(sub.destination_ids)
            if targets:
                line = json_line(event)
                for id in targets:
                    if id in deliveries:
                        lines.setdefault(id, []).append(line)
        for id, batch in lines.items():
            deliveries[id].append(batch)

    # --- lifetime -----------------------------------------------------------------------

    def flush(self, wait: float = 5.0) -> bool:
        """Wait until the dispatcher routed what was published before (tests)."""
        done = threading.Event()
        deadline = threading.Timer(wait, done.set)
        deadline.start()
        try:
            while not done.is_set():
                with self._lock:
                    idle = self._queue.unfinished_tasks == 0 and self._overflow.pending == 0
                if idle:
                    return True
                done.wait(0.01)
            return False
        finally:
            deadline.cancel()

    def close(self, wait: float = 2.0) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._thread.join(wait + 5)
        deliveries = list(self.deliveries.values())
        for delivery in deliveries:  # all drain at once: `wait` in all, not each
            delivery.drain()
        deadline = time.monotonic() + wait
        for delivery in deliveries:
            delivery.close(max(0.0, deadline - time.monotonic()))
        self._overflow.close()


# --- the process's bus ------------------------------------------------------------------

_current: list[Bus] = []


def install(bus: Bus | None) -> None:
    """Make `bus` the one `publish` sends to (None: events are dropped)."""
    _current[:] = [bus] if bus is not None else []


def current() -> Bus | None:
    return _current[0] if _current else None


def publish(event: Event) -> None:
    """Publish to the process's bus, if there is one (`edgeward serve` with `api:`)."""
    if _current:
        _current[0].publish(event)


__all__ = [
    "MAX_QUEUED",
    "OVERFLOW",
    "Bus",
    "BusStats",
    "SpoolStats",
    "current",
    "install",
    "publish",
]
