"""One destination's delivery: its spool, its kind's client, and a sender
thread that takes batches from the spool, sends them, and commits them only
once the receiver took them; a failure waits (exponential backoff, capped)
and sends the same batch again, so order is kept and nothing is skipped."""

from __future__ import annotations

import json
import logging
import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from edgeward.events.errors import DeliveryError
from edgeward.events.ocsf import to_ocsf
from edgeward.events.spec import DestinationSpec
from edgeward.events.spool import MAX_BYTES, Spool

log = logging.getLogger("edgeward.events")
BATCH = 500
BACKOFF_MIN = 0.1
BACKOFF_MAX = 30.0


class Client(Protocol):
    """A destination kind: sends one batch (raises DeliveryError), closes."""

    def send(self, events: Sequence[Mapping[str, Any]]) -> None: ...

    def close(self) -> None: ...


def open_client(spec: DestinationSpec) -> Client:
    if spec.kind == "file":
        from edgeward.events.jsonlines import FileDestination

        return FileDestination(spec.options)
    if spec.kind == "syslog":
        from edgeward.events.syslog import SyslogDestination

        return SyslogDestination(spec.options)
    from edgeward.events.http import HttpDestination

    return HttpDestination(spec.options)


class Delivery:
    def __init__(
        self,
        spec: DestinationSpec,
        spool_dir: Path,
        *,
        backoff_max: float = BACKOFF_MAX,
        spool_max_bytes: int = MAX_BYTES,
    ) -> None:
        self.spec = spec
        self.client = open_client(spec)
        self.spool = Spool(spool_dir, max_bytes=spool_max_bytes)
        self.spool_dir = spool_dir
        self._next: tuple[DestinationSpec, Client] | None = None
        self.backoff_max = backoff_max
        self.delivered = 0  # events the receiver took (tests, metrics)
        self.failures = 0  # failed attempts
        self._stop = threading.Event()
        self._wake = threading.Event()  # ends a backoff early: new settings, closing
        self._draining = False
        self._thread = threading.Thread(
            target=self._run, name=f"edgeward-events {spec.id}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        backoff = BACKOFF_MIN
        failing = False
        while not self._stop.is_set():
            if self._next is not None:  # reconfigured: the new client from this batch on
                (self.spec, client), self._next = self._next, None
                self.client, old = client, self.client
                old.close()
            records, size = self.spool.peek(BATCH, timeout=0.5)
            if not records:
                if self._draining:
                    return
                continue
            events = [json.loads(r) for r in records]
            if self.spec.format == "ocsf":
                events = [to_ocsf(e) for e in events]
            try:
                self.client.send(events)
            except DeliveryError as exc:
                self.failures += 1
                if not failing:
                    log.warning(
                        "event destination %s: %s (keeping events in the spool, retrying)",
                        self.spec.id,
                        exc,
                    )
                failing = True
                if self._wake.wait(backoff):
                    self._wake.clear()
                    backoff = BACKOFF_MIN  # new settings: try them at once
                else:
                    backoff = min(backoff * 2, self.backoff_max)
                continue
            except Exception:  # a bug: say so, keep the batch, do not spin
                log.exception("event destination %s: cannot send a batch", self.spec.id)
                self._wake.wait(self.backoff_max)
                self._wake.clear()
                continue
            self.spool.commit(size)
            self.delivered += len(records)
            if failing:
                log.warning("event destination %s: delivering again", self.spec.id)
            failing = False
            backoff = BACKOFF_MIN

    def append(self, lines: list[str]) -> None:
        self.spool.append(lines)

    def replace(self, spec: DestinationSpec) -> None:
        """Deliver with `spec`'s settings from the next batch on (same spool,
        same order). Raises what opening the new client raises."""
        self._next = (spec, open_client(spec))
        self._wake.set()
        self.spool.wake()

    def retire(self) -> None:
        """Stop and delete the spool, in a thread of its own (a send in
        progress ends by its timeouts): the destination was deleted."""

        def run() -> None:
            self._stop.set()
            self._wake.set()
            self.spool.wake()
            self._thread.join()
            self.client.close()
            self.spool.close()
            shutil.rmtree(self.spool_dir, ignore_errors=True)

        threading.Thread(
            target=run, name=f"edgeward-events {self.spec.id} stop", daemon=True
        ).start()

    def drain(self) -> None:
        """Closing: the sender stops once its spool is empty (`close` waits)."""
        self._draining = True
        self.spool.wake()

    def close(self, wait: float = 2.0) -> None:
        """Send what is pending for at most `wait` seconds; what is left stays
        in the spool for the next start."""
        self.drain()
        self._thread.join(wait)
        self._stop.set()
        self._wake.set()
        self.spool.wake()
        self._thread.join(12)  # a send in progress ends by its timeouts
        self.client.close()
        if not self._thread.is_alive():
            self.spool.close()


__all__ = ["BACKOFF_MAX", "Client", "Delivery", "open_client"]
