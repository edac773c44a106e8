"""Where sessions, hand-off codes and used login states live, behind one
small interface so a store can move (memory today, the SQLite of the state
store, Redis for several edges).

Each operation returns an `Op`: a generator that yields effects and returns
the result, like the actions do. The memory and SQLite stores answer at
once (their generators never yield); the Redis store yields an
`edgeward.hooks.Await` the proxy performs in its loop. Values are JSON
objects; every entry has a time to live, and `now` is always given by the
caller (the stores have no clock of their own, so tests drive time).

Operations (keys are namespaced by the caller: ``session:…``,
``handoff:…``, ``state:…``, ``lock:…``):

- `get(key)` / `put(key, value, ttl)` / `delete(key)`;
- `add(key, value, ttl)`: store only when absent, True when stored (single
  use of a login state; the per-session refresh lock);
- `take(key)`: get and delete at once (hand-off codes are single-use even
  when two requests race);
- `forget(key)`: drop any copy of `key` this process keeps, so the next
  `get` asks the store itself (a no-op but for `CachedStore`).

`CachedStore` puts a short per-process read cache of sessions in front of
a shared store (SQLite, Redis): checking a session is the hot path of every
authenticated request, and a second of staleness across edges is the
price (docs/identity.md §6).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Generator
from pathlib import Path
from typing import Any, Protocol, TypeVar

from edgeward.hooks import Effect, EffectResult

T = TypeVar("T")
Op = Generator[Effect, EffectResult, T]
Value = dict[str, Any]

MAX_MEMORY_ENTRIES = 200_000


class StoreError(Exception):
    """The store could not be reached or answered nonsense (message safe
    to log: never a value)."""


class SessionStore(Protocol):
    name: str

    def get(self, key: str, now: float) -> Op[Value | None]: ...
    def put(self, key: str, value: Value, ttl: float, now: float) -> Op[None]: ...
    def add(self, key: str, value: Value, ttl: float, now: float) -> Op[bool]: ...
    def take(self, key: str, now: float) -> Op[Value | None]: ...
    def delete(self, key: str) -> Op[None]: ...
    def forget(self, key: str) -> None: ...


def run_now(op: Op[T]) -> T:
    """The result of an operation that needs no effect (memory, SQLite)."""
    try:
        effect = op.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    op.close()
    raise RuntimeError(f"the store asked for {effect!r}")


class MemoryStore:
    """In this process: lost on restart, not shared between workers or
    edges. Bounded: the oldest entries go first past `max_entries`. Values
    are kept as JSON text, so callers never share state with the store
    (what the other stores give by construction)."""

    name = "memory"

    def __init__(self, max_entries: int = MAX_MEMORY_ENTRIES) -> None:
        self._data: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._max = max_entries

    def __len__(self) -> int:
        return len(self._data)

    def _live(self, key: str, now: float) -> str | None:
        found = self._data.get(key)
        if found is None:
            return None
        if found[0] <= now:
            del self._data[key]
            return None
        return found[1]

    def _set(self, key: str, value: Value, ttl: float, now: float) -> None:
        self._data[key] = (now + ttl, json.dumps(value))
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    def get(self, key: str, now: float) -> Op[Value | None]:
        found = self._live(key, now)
        return json.loads(found) if found is not None else None
        yield  # type: ignore[unreachable]

    def put(self, key: str, value: Value, ttl: float, now: float) -> Op[None]:
        self._set(key, value, ttl, now)
        return None
        yield  # type: ignore[unreachable]

    def add(self, key: str, value: Value, ttl: float, now: float) -> Op[bool]:
        if self._live(key, now) is not None:
            return False
        self._set(key, value, ttl, now)
        return True
        yield  # type: ignore[unreachable]

    def take(self, key: str, now: float) -> Op[Value | None]:
        found = self._live(key, now)
        self._data.pop(key, None)
        return json.loads(found) if found is not None else None
        yield  # type: ignore[unreachable]

    def delete(self, key: str) -> Op[None]:
        self._data.pop(key, None)
        return None
        yield  # type: ignore[unreachable]

    def forget(self, key: str) -> None:
        pass


class SqliteStore:
    """A SQLite file (sqlite3, WAL): survives restarts and is shared by the
    workers of one machine. Each call is a short local transaction, made in
    the event loop's thread; one table, `identity_entries` (key, expires,
    value). Expired rows are deleted as new ones are written."""

    name = "sqlite"

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=2000")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS identity_entries"
            " (key TEXT PRIMARY KEY, expires REAL NOT NULL, value TEXT NOT NULL)"
        )
        self._writes = 0

    def close(self) -> None:
        self._db.close()

    def _run(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        try:
            with self._lock:
                return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {self.path}: {exc}") from None

    def _purge(self, now: float) -> None:
        self._writes += 1
        if self._writes % 256 == 0:
            self._run("DELETE FROM identity_entries WHERE expires <= ?", (now,))

    def get(self, key: str, now: float) -> Op[Value | None]:
        rows = self._run(
            "SELECT value FROM identity_entries WHERE key = ? AND expires > ?", (key, now)
        )
        return json.loads(rows[0][0]) if rows else None
        yield  # type: ignore[unreachable]

    def put(self, key: str, value: Value, ttl: float, now: float) -> Op[None]:
        self._run(
            "INSERT OR REPLACE INTO identity_entries (key, expires, value) VALUES (?, ?, ?)",
            (key, now + ttl, json.dumps(value)),
        )
        self._purge(now)
        return None
        yield  # type: ignore[unreachable]

    def add(self, key: str, value: Value, ttl: float, now: float) -> Op[bool]:
        # One statement: an expired row is replaced, a live one kept.
        rows = self._run(
            "INSERT INTO identity_entries (key, expires, value) VALUES (?, ?, ?)"
            " ON CONFLICT(key) DO UPDATE SET expires = excluded.expires, value = excluded.value"
            " WHERE identity_entries.expires <= ? RETURNING key",
            (key, now + ttl, json.dumps(value), now),
        )
        self._purge(now)
        return bool(rows)
        yield  # type: ignore[unreachable]

    def take(self, key: str, now: float) -> Op[Value | None]:
        rows = self._run(
            "DELETE FROM identity_entries WHERE key = ? RETURNING value, expires", (key,)
        )
        if not rows or rows[0][1] <= now:
            return None
        return json.loads(rows[0][0])  # type: ignore[no-any-return]
        yield  # type: ignore[unreachable]

    def delete(self, key: str) -> Op[None]:
        self._run("DELETE FROM identity_entries WHERE key = ?", (key,))
        return None
        yield  # type: ignore[unreachable]

    def forget(self, key: str) -> None:
        pass


SESSION_PREFIX = "session:"
CACHE_SECONDS = 1.0
CACHE_ENTRIES = 10_000


class CachedStore:
    """A read cache of sessions (keys ``session:…``) in front of `inner`,
    for this process: a session read from the store is served from memory
    for up to `seconds` (never past the time to live this process wrote it
    with), so a busy session costs no store round trip and no JSON decode
    per request. Every write and delete through this object updates or drops
    its copy at once: a logout or a session ended on this edge takes effect
    immediately here. What another edge (or worker) writes to the shared
    store is seen here at most `seconds` late. Absent sessions are not
    cached; other keys (hand-off codes, states, locks) always go to the
    store. Callers get their own shallow copy of a cached value."""

    def __init__(
        self,
        inner: SessionStore,
        *,
        seconds: float = CACHE_SECONDS,
        max_entries: int = CACHE_ENTRIES,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.seconds = seconds
        self._max = max_entries
        # key -> (cached at, not after, value)
        self._cache: dict[str, tuple[float, float, Value]] = {}

    def __len__(self) -> int:
        return len(self._cache)

    def _keep(self, key: str, value: Value, now: float, until: float) -> None:
        if not key.startswith(SESSION_PREFIX) or self.seconds <= 0:
            return
        self._cache.pop(key, None)
        self._cache[key] = (now, min(until, now + self.seconds), value)
        while len(self._cache) > self._max:
            del self._cache[next(iter(self._cache))]

    def get(self, key: str, now: float) -> Op[Value | None]:
        found = self._cache.get(key)
        if found is not None:
            if found[0] <= now < found[1]:
                return dict(found[2])
            del self._cache[key]
        value = yield from self.inner.get(key, now)
        if value is not None:
            self._keep(key, value, now, now + self.seconds)
            return dict(value)
        return None

    def put(self, key: str, value: Value, ttl: float, now: float) -> Op[None]:
        self._cache.pop(key, None)
        yield from self.inner.put(key, value, ttl, now)
        self._keep(key, dict(value), now, now + ttl)

    def add(self, key: str, value: Value, ttl: float, now: float) -> Op[bool]:
        self._cache.pop(key, None)
        return (yield from self.inner.add(key, value, ttl, now))

    def take(self, key: str, now: float) -> Op[Value | None]:
        self._cache.pop(key, None)
        return (yield from self.inner.take(key, now))

    def delete(self, key: str) -> Op[None]:
        self._cache.pop(key, None)
        yield from self.inner.delete(key)

    def forget(self, key: str) -> None:
        self._cache.pop(key, None)
        self.inner.forget(key)


__all__ = [
    "CachedStore",
    "MemoryStore",
    "Op",
    "SessionStore",
    "SqliteStore",
    "StoreError",
    "Value",
    "run_now",
]
