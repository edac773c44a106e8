"""The session stores behind one interface: memory, SQLite and (when a
redis-server binary is installed) Redis, started on a loopback port."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from edgeward.hooks import Await
from edgeward.identity.store import MemoryStore, SessionStore, SqliteStore, run_now

Run = Callable[[Any], Any]


def _run_with_effects(op: Any) -> Any:
    """Perform `Await` effects with trio, as the proxy does."""

    async def main() -> Any:
        try:
            effect = op.send(None)
            while True:
                assert isinstance(effect, Await)
                try:
                    result = await effect.call()
                except Exception as exc:
                    result = exc
                effect = op.send(result)
        except StopIteration as stop:
            return stop.value

    return trio.run(main)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[SessionStore, Run]]:
    if request.param == "memory":
        yield MemoryStore(), run_now
    elif request.param == "sqlite":
        s = SqliteStore(tmp_path / "sessions.db")
        yield s, run_now
        s.close()
    else:
        from edgeward.identity.redis_store import RedisStore

        url = request.getfixturevalue("redis_url")
        yield RedisStore(url, prefix=f"t{time.monotonic_ns()}:"), _run_with_effects


def test_get_put_delete(store: tuple[SessionStore, Run]) -> None:
    s, run = store
    now = time.time()
    assert run(s.get("session:a", now)) is None
    run(s.put("session:a", {"x": [1, "y"]}, 60, now))
    assert run(s.get("session:a", now)) == {"x": [1, "y"]}
    run(s.delete("session:a"))
    assert run(s.get("session:a", now)) is None


def test_add_is_once_and_take_is_single_use(store: tuple[SessionStore, Run]) -> None:
    s, run = store
    now = time.time()
    assert run(s.add("state:x", {}, 60, now)) is True
    assert run(s.add("state:x", {}, 60, now)) is False
    run(s.put("handoff:c", {"sid": "s"}, 60, now))
    assert run(s.take("handoff:c", now)) == {"sid": "s"}
    assert run(s.take("handoff:c", now)) is None


def test_entries_expire(store: tuple[SessionStore, Run]) -> None:
    s, run = store
    if s.name == "redis":
        now = time.time()
        run(s.put("k", {"v": 1}, 0.05, now))
        deadline = time.monotonic() + 5
        while run(s.get("k", time.time())) is not None:  # Redis's own clock
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert run(s.add("k", {}, 60, time.time())) is True
        return
    run(s.put("k", {"v": 1}, 10, 1000.0))
    assert run(s.get("k", 1009.0)) == {"v": 1}
    assert run(s.get("k", 1010.0)) is None
    assert run(s.take("k", 1010.0)) is None
    assert run(s.add("k", {"v": 2}, 10, 1010.0)) is True  # an expired entry is replaced
    assert run(s.get("k", 1011.0)) == {"v": 2}


def test_memory_store_is_bounded() -> None:
    s = MemoryStore(max_entries=3)
    for i in range(5):
        run_now(s.put(f"k{i}", {}, 60, 0))
    assert len(s) == 3 and run_now(s.get("k0", 0)) is None and run_now(s.get("k4", 0)) == {}


def test_values_are_copies() -> None:
    s = MemoryStore()
    value = {"a": [1]}
    run_now(s.put("k", value, 60, 0))
    value["a"].append(2)
    got = run_now(s.get("k", 0))
    got["a"].append(3)
    assert run_now(s.get("k", 0)) == {"a": [1]}
