"""An on-disk FIFO of event lines: what a destination has not taken yet.

One append-only file (`events.jsonl`) and a committed read offset
(`cursor`, replaced atomically). The sender `peek`s a batch, delivers it,
and only then `commit`s it, so a receiver that is down, slow or refusing
keeps its events here, in order, across a restart of the edge. When the
reader catches up with the writer, both start again at offset 0 (the file
is truncated), so a spool that keeps up takes no disk space; a reader that
is always a little behind (a steady stream of events) never catches up, so
once most of the file is delivered its rest is copied to a new file
(`compact`). What waits is bounded (`max_bytes`, 1 GiB by default): past it,
new events are dropped, counted and logged, rather than filling the disk
during a long outage of the receiver (as a log shipper's disk buffer does
with `drop_newest`).

Delivery is at least once: a batch the receiver took but whose answer was
lost (or an edge that stopped between delivering and committing) is sent
again. Threads: any number of appenders, one reader.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

log = logging.getLogger("edgeward.events")

DATA = "events.jsonl"
CURSOR = "cursor"
READ_CHUNK = 1 << 20
MAX_BYTES = 1 << 30
"""What a spool holds for its receiver at most; past it, new events are dropped."""
COMPACT_AT = 64 << 20
"""Delivered bytes at the head of the file that make it worth copying the rest."""


class Spool:
    def __init__(
        self, directory: Path, *, max_bytes: int = MAX_BYTES, compact_at: int = COMPACT_AT
    ) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory = directory
        self.max_bytes = max_bytes
        self.compact_at = compact_at
        self.dropped = 0  # events refused because the spool was full
        self._full = False  # dropping (logged once per episode)
        self._fd = self._open()
        self._cond = threading.Condition()
        self._end = os.fstat(self._fd).st_size
        self._cursor = self._read_cursor()
        self._closed = False
        if self._end and not self._ends_with_newline():  # a torn last write: finish the line
            os.write(self._fd, b"\n")
            self._end += 1
        self._pending = self._end - self._cursor  # `pending`: set with every change

    def _open(self) -> int:
        return os.open(self.directory / DATA, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)

    def _read_cursor(self) -> int:
        try:
            value = int((self.directory / CURSOR).read_text().strip() or 0)
        except (OSError, ValueError):
            value = 0
        return value if 0 <= value <= self._end else 0

    def _ends_with_newline(self) -> bool:
        return os.pread(self._fd, 1, self._end - 1) == b"\n"

    # --- writers ----------------------------------------------------------------------

    def append(self, lines: list[str]) -> None:
        """Add lines (each one record, without its newline) at the end;
        dropped when the spool holds `max_bytes` already."""
        if not lines:
            return
        data = ("\n".join(lines) + "\n").encode("utf-8", "backslashreplace")
        with self._cond:
            if self._end - self._cursor + len(data) > self.max_bytes:
                self.dropped += len(lines)
                if not self._full:
                    self._full = True
                    log.error(
                        "event spool %s holds %d bytes, its limit: dropping new events"
                        " until its receiver takes some",
                        self.directory,
                        self._end - self._cursor,
                    )
                return
            if self._full:
                self._full = False
                log.warning(
                    "event spool %s: taking events again (%d dropped so far)",
                    self.directory,
                    self.dropped,
                )
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            self._end += len(data)
            self._pending = self._end - self._cursor
            self._cond.notify_all()

    # --- the reader ---------------------------------------------------------------------

    def peek(self, limit: int, timeout: float | None = None) -> tuple[list[bytes], int]:
        """Up to `limit` records from the cursor on, without taking them, and
        their size in bytes (what `commit` takes); waits up to `timeout`
        seconds for one to come. ([], 0) when none came."""
        with self._cond:
            if self._cursor >= self._end and not self._closed:
                self._cond.wait(timeout)
            start, end = self._cursor, self._end
        if start >= end:
            return [], 0
        chunk = os.pread(self._fd, min(end - start, READ_CHUNK), start)
        records: list[bytes] = []
        used = 0
        while len(records) < limit:
            newline = chunk.find(b"\n", used)
            if newline < 0:
                break
            if newline > used:
                records.append(chunk[used:newline])
            used = newline + 1
        if not records and used == 0:  # one record longer than a chunk: read it whole
            rest = os.pread(self._fd, end - start, start)
            newline = rest.find(b"\n")
            return [rest[:newline]], newline + 1
        return records, used

    def commit(self, size: int) -> None:
        """Take `size` bytes that `peek` returned: they were delivered."""
        with self._cond:
            self._cursor += size
            if self._cursor >= self._end:  # caught up: start the file again
                self._write_cursor(0)
                os.ftruncate(self._fd, 0)
                self._cursor = self._end = 0
            elif self._cursor >= self.compact_at and self._cursor >= self._end - self._cursor:
                self._compact()
            else:
                self._write_cursor(self._cursor)
            self._pending = self._end - self._cursor

    def _compact(self) -> None:
        """Copy what is left to a new file that replaces this one (its
        cost, at most the bytes delivered, is paid once per `compact_at`).
        The cursor goes to 0 first: an edge that stops in between sends
        the old file again from its start (at least once, never a loss)."""
        tmp = self.directory / (DATA + ".tmp")
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            offset = self._cursor
            while offset < self._end:
                chunk = os.pread(self._fd, min(self._end - offset, READ_CHUNK), offset)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view) :]
                offset += len(chunk)
        finally:
            os.close(out)
        self._write_cursor(0)
        os.replace(tmp, self.directory / DATA)
        os.close(self._fd)
        self._fd = self._open()
        self._end -= self._cursor
        self._cursor = 0

    def _write_cursor(self, value: int) -> None:
        tmp = self.directory / (CURSOR + ".tmp")
        tmp.write_text(f"{value}\n")
        os.replace(tmp, self.directory / CURSOR)

    @property
    def pending(self) -> int:
        """Bytes not yet taken. One int, set under the lock by each change
        and read without it: a `/metrics` scrape on the event loop must not
        wait for an append or a compaction that holds the lock over I/O."""
        return self._pending

    def wake(self) -> None:
        """End a reader's wait now (closing, reconfiguring)."""
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        os.close(self._fd)


__all__ = ["Spool"]
