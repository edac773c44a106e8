"""The state store on a real PostgreSQL (a cluster the test run starts):
the same migrations, secret check, transactions and watcher as on SQLite,
and nodes that open a fresh database together."""

from __future__ import annotations

import threading
from functools import partial
from pathlib import Path

import pytest
import trio
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from tests.store.postgres_support import Postgres

from edgeward.authtokens import Acl, manage, snapshot
from edgeward.store import Store, StoreError, migrate, statedir
from edgeward.store.schema import metadata
from edgeward.store.trio_adapter import AsyncStore


def test_the_schema_is_at_head_and_matches_schema_py(tmp_path: Path, postgres: Postgres) -> None:
    with Store.open(tmp_path, url=postgres.database()) as store, store.engine.connect() as conn:
        assert store.engine.dialect.name == "postgresql"
        assert migrate.current(conn) == migrate.HEAD
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_nodes_opening_a_fresh_database_together_migrate_it_once(
    tmp_path: Path, postgres: Postgres
) -> None:
    url = postgres.database()
    Store.open(tmp_path / "first", url=url).close()  # makes the secret check row
    secret = (tmp_path / "first" / statedir.SECRET).read_bytes()
    fresh = postgres.database()
    outcomes: list[object] = []

    def node(i: int) -> None:  # every node has the same secret file, as deployed
        state = tmp_path / f"node{i}"
        state.mkdir(mode=0o700)
        (state / statedir.SECRET).write_bytes(secret)
        try:
            with Store.open(state, url=fresh) as store:
                outcomes.append(store.revision())
        except StoreError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=node, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)  # a hang guard: without the migration lock, nodes can deadlock
    assert not any(thread.is_alive() for thread in threads)
    assert outcomes == [0, 0, 0, 0]


def test_tokens_written_by_one_node_authenticate_on_another(
    tmp_path: Path, postgres: Postgres
) -> None:
    url = postgres.database()
    with Store.open(tmp_path / "a", url=url) as a:
        made = manage.create(a, acl=Acl.parse(["bind:*.alice.internal"]), description="laptop")
    (tmp_path / "b").mkdir(mode=0o700)
    (tmp_path / "b" / statedir.SECRET).write_bytes((tmp_path / "a" / statedir.SECRET).read_bytes())
    with Store.open(tmp_path / "b", url=url) as b:
        found = snapshot.load(b).authenticate(made.token.text)
        assert found is not None and found.id == made.row.id
        manage.revoke(b, made.row.id)
    with Store.open(tmp_path / "a", url=url) as a:
        assert snapshot.load(a).authenticate(made.token.text) is None
        assert a.revision() == 2


def test_a_node_with_another_secret_is_refused(tmp_path: Path, postgres: Postgres) -> None:
    url = postgres.database()
    Store.open(tmp_path / "a", url=url).close()
    with pytest.raises(StoreError, match=r"made with another secret\.key"):
        Store.open(tmp_path / "b", url=url)  # a fresh state dir: a new secret


def test_the_watcher_sees_another_node_s_revocation(tmp_path: Path, postgres: Postgres) -> None:
    url = postgres.database()
    with Store.open(tmp_path, url=url) as store:
        made = manage.create(store, acl=Acl.parse([]))

        async def main() -> None:
            published: list[snapshot.Snapshot] = []
            changed = trio.Event()

            def publish(value: snapshot.Snapshot) -> None:
                nonlocal changed
                published.append(value)
                changed.set()
                changed = trio.Event()

            watch = partial(AsyncStore(store).watch, snapshot.load, publish, interval=0.02)
            async with trio.open_nursery() as nursery:
                first = await nursery.start(watch)
                assert first.authenticate(made.token.text) is not None
                with Store.open(tmp_path, url=url) as other:  # another node's connection
                    await trio.to_thread.run_sync(manage.revoke, other, made.row.id)
                with trio.fail_after(60):  # a hang guard, not a timing assertion
                    while not published:
                        await changed.wait()
                assert published[-1].authenticate(made.token.text) is None
                nursery.cancel_scope.cancel()

        trio.run(main)
