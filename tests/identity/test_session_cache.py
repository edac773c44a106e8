"""The per-process caches of the session check: `CachedStore` in front of a
shared store, and the keyring's memory of values it has unsealed. They must
not change what a request gets: a logout or an ended session on this edge
takes effect at once, nothing is served past its expiry, and another
edge's writes are seen within the cache's bound."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.identity.test_flow import FakeProvider, Jar, login, request, run, setup

from edgeward.identity import SessionOptions
from edgeward.identity.flow import Client, Runtime, cookie_names, guard
from edgeward.identity.seal import Keyring, SealError
from edgeward.identity.store import CachedStore, SqliteStore, run_now


@pytest.fixture
def pair(tmp_path: Path) -> tuple[CachedStore, SqliteStore]:
    """This edge's cached store, and another edge's view of the same file."""
    return CachedStore(SqliteStore(tmp_path / "s.db")), SqliteStore(tmp_path / "s.db")


def test_another_edges_write_is_seen_within_the_bound(
    pair: tuple[CachedStore, SqliteStore],
) -> None:
    here, there = pair
    run_now(there.put("session:a", {"v": 1}, 60, 100.0))
    assert run_now(here.get("session:a", 100.0)) == {"v": 1}
    run_now(there.put("session:a", {"v": 2}, 60, 100.2))
    assert run_now(here.get("session:a", 100.5)) == {"v": 1}  # cached, within 1 s
    assert run_now(here.get("session:a", 101.0)) == {"v": 2}
    run_now(there.delete("session:a"))
    assert run_now(here.get("session:a", 102.5)) is None


def test_writes_and_deletes_here_take_effect_at_once(
    pair: tuple[CachedStore, SqliteStore],
) -> None:
    here, there = pair
    run_now(here.put("session:a", {"v": 1}, 60, 100.0))
    assert run_now(here.get("session:a", 100.0)) == {"v": 1}
    run_now(here.put("session:a", {"v": 2}, 60, 100.1))
    assert run_now(here.get("session:a", 100.1)) == {"v": 2}
    run_now(here.delete("session:a"))
    assert run_now(here.get("session:a", 100.2)) is None
    assert run_now(there.get("session:a", 100.2)) is None
    run_now(here.put("session:b", {"v": 1}, 60, 100.0))
    assert run_now(here.take("session:b", 100.1)) == {"v": 1}
    assert run_now(here.get("session:b", 100.2)) is None


def test_nothing_is_served_past_its_time_to_live(pair: tuple[CachedStore, SqliteStore]) -> None:
    here, _ = pair
    run_now(here.put("session:a", {"v": 1}, 0.3, 100.0))
    assert run_now(here.get("session:a", 100.2)) == {"v": 1}
    assert run_now(here.get("session:a", 100.3)) is None


def test_callers_get_copies_and_other_keys_are_not_cached(
    pair: tuple[CachedStore, SqliteStore],
) -> None:
    here, there = pair
    run_now(here.put("session:a", {"v": 1}, 60, 100.0))
    got = run_now(here.get("session:a", 100.0))
    assert got is not None
    got["v"] = 9
    assert run_now(here.get("session:a", 100.0)) == {"v": 1}
    run_now(here.put("handoff:x", {"v": 1}, 60, 100.0))
    run_now(there.delete("handoff:x"))
    assert run_now(here.get("handoff:x", 100.0)) is None
    here.forget("session:a")
    run_now(there.delete("session:a"))
    assert run_now(here.get("session:a", 100.0)) is None


def test_the_cache_is_bounded(tmp_path: Path) -> None:
    here = CachedStore(SqliteStore(tmp_path / "s.db"), max_entries=3)
    for i in range(10):
        run_now(here.put(f"session:{i}", {"v": i}, 60, 100.0))
    assert len(here) == 3


def _cached_setup(tmp_path: Path) -> tuple[Runtime, Client, FakeProvider]:
    rt, client, idp = setup()
    rt.store = CachedStore(SqliteStore(tmp_path / "s.db"))
    return rt, client, idp


def test_logout_ends_the_session_at_once_on_this_edge(tmp_path: Path) -> None:
    rt, client, idp = _cached_setup(tmp_path)
    jar = Jar()
    assert login(rt, client, idp, jar, "https://app.example/").session is not None
    old = Jar()
    old.cookies = dict(jar.cookies)  # the cookie as it was before logging out
    opts = SessionOptions()
    now = time.time()
    again = run(guard(rt, client, opts, request("https://app.example/", old), now), idp)
    assert again.session is not None  # served from the cache
    out = run(guard(rt, client, opts, request("https://app.example/ngrok/logout", jar), now), idp)
    assert out.reply is not None and out.reply.status == 200
    after = run(guard(rt, client, opts, request("https://app.example/", old), now), idp)
    assert after.session is None and after.reply is not None and after.reply.status == 302


def test_a_session_past_its_max_duration_is_not_served_from_the_cache(tmp_path: Path) -> None:
    rt, client, idp = _cached_setup(tmp_path)
    jar = Jar()
    assert login(rt, client, idp, jar, "https://app.example/").session is not None
    opts = SessionOptions(max_duration=60)
    now = time.time()
    assert run(guard(rt, client, opts, request("https://app.example/", jar), now), idp).session
    late = run(guard(rt, client, opts, request("https://app.example/", jar), now + 60.5), idp)
    assert late.session is None and late.max_duration_reached


def test_a_remembered_cookie_still_expires_and_a_new_keyring_forgets() -> None:
    keys = Keyring.generate()
    sealed = keys.seal("session", {"s": "a", "exp": 100.0})
    assert keys.unseal("session", sealed, 99.0)["s"] == "a"
    assert keys.unseal("session", sealed, 99.5)["s"] == "a"  # remembered
    with pytest.raises(SealError):
        keys.unseal("session", sealed, 100.0)
    with pytest.raises(SealError):
        keys.unseal("tx", sealed, 99.0)  # another purpose is never a hit
    with pytest.raises(SealError):
        Keyring.generate().unseal("session", sealed, 99.0)
    assert cookie_names(SessionOptions())[0]
