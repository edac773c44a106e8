"""The state store on a real SQLite file: opening, migrations, the
deployment secret, transactions and the revision counter."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from edgeward.store import AuthtokenRow, Store, StoreError, authtoken_rows, migrate, statedir
from edgeward.store.schema import metadata


def row(id: str = "at_aaaaaaaaaaaaaaaa", **changes: object) -> AuthtokenRow:
    values: dict[str, object] = {
        "id": id,
        "description": "d",
        "token_hash": "0" * 64,
        "acl": ("bind:a.example",),
        "metadata": "",
        "created_at": datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    }
    values.update(changes)
    return AuthtokenRow(**values)  # type: ignore[arg-type]


def test_open_creates_a_private_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "a" / "state"
    with Store.open(state) as store:
        assert store.revision() == 0
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for name in (statedir.SECRET, statedir.DATABASE):
        assert stat.S_IMODE((state / name).stat().st_mode) == 0o600, name
    secret = (state / statedir.SECRET).read_text().strip()
    assert len(bytes.fromhex(secret)) == 32


def test_schema_is_at_head_and_matches_schema_py(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store, store.engine.connect() as conn:
        assert migrate.current(conn) == migrate.head() == migrate.HEAD == "0006"
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        assert journal == "wal"


def test_migrations_go_down_and_up_again(tmp_path: Path) -> None:
    from alembic import command

    with Store.open(tmp_path) as store, store.engine.begin() as conn:
        command.downgrade(migrate.config(conn), "base")
        assert migrate.current(conn) is None
        assert "authtokens" not in _tables(conn)
    with Store.open(tmp_path) as store:  # reopening upgrades again
        assert store.revision() == 0


def test_rows_round_trip_and_reopen(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store, store.write() as conn:
        authtoken_rows.insert(conn, row(metadata="ü" * 10, acl=("*", "bind:k=v")))
    with Store.open(tmp_path) as store, store.read() as conn:
        (got,) = authtoken_rows.select(conn)
    assert got == row(metadata="ü" * 10, acl=("*", "bind:k=v"))
    assert got.created_at.tzinfo is UTC


def test_times_are_stored_as_utc(tmp_path: Path) -> None:
    plus2 = timezone(timedelta(hours=2))
    local = datetime(2030, 1, 2, 5, 0, tzinfo=plus2)
    with Store.open(tmp_path) as store:
        with store.write() as conn:
            authtoken_rows.insert(conn, row(created_at=local))
        with store.read() as conn:
            got = authtoken_rows.get(conn, row().id)
        assert got is not None and got.created_at == local
        assert got.created_at.tzinfo is UTC and got.created_at.hour == 3
        with pytest.raises(StoreError, match="naive"), store.write() as conn:
            authtoken_rows.insert(
                conn, row(id="at_bbbbbbbbbbbbbbbb", created_at=datetime(2030, 1, 1))
            )


def test_every_write_bumps_the_revision_and_reads_do_not(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        with store.write() as conn:
            authtoken_rows.insert(conn, row())
        assert store.revision() == 1
        with store.read() as conn:
            authtoken_rows.select(conn)
        assert store.revision() == 1
        with store.write() as conn:
            authtoken_rows.revoke(conn, row().id, datetime.now(UTC))
        assert store.revision() == 2


def test_a_failed_write_rolls_back_with_its_bump(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        with store.write() as conn:
            authtoken_rows.insert(conn, row())
        with pytest.raises(StoreError, match="UNIQUE"), store.write() as conn:
            authtoken_rows.insert(conn, row(id="at_cccccccccccccccc"))
            authtoken_rows.insert(conn, row())  # duplicate id
        assert store.revision() == 1
        with store.read() as conn:
            assert [r.id for r in authtoken_rows.select(conn)] == [row().id]


def test_revoke_keeps_the_first_time(tmp_path: Path) -> None:
    first = datetime(2031, 1, 1, tzinfo=UTC)
    with Store.open(tmp_path) as store, store.write() as conn:
        authtoken_rows.insert(conn, row())
        assert authtoken_rows.revoke(conn, row().id, first).revoked_at == first  # type: ignore[union-attr]
        again = authtoken_rows.revoke(conn, row().id, first + timedelta(days=1))
        assert again is not None and again.revoked_at == first
        assert authtoken_rows.revoke(conn, "at_zzzzzzzzzzzzzzzz", first) is None
        assert authtoken_rows.select(conn, revoked=False) == []


def test_concurrent_writers_from_threads_lose_no_update(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:

        def writer(n: int) -> None:
            for i in range(25):
                with store.write() as conn:
                    authtoken_rows.insert(conn, row(id=f"at_{n}{i:02d}"))

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert store.revision() == 100


def test_concurrent_processes_open_a_new_store_and_write(tmp_path: Path) -> None:
    """Three processes race to create and migrate one store, then write: the
    secret is made once, the schema once, and no write is lost."""
    script = (
        "import sys\n"
        "from datetime import UTC, datetime\n"
        "from edgeward.store import AuthtokenRow, Store, authtoken_rows\n"
        "with Store.open(sys.argv[1]) as s:\n"
        "    for i in range(5):\n"
        "        with s.write() as c:\n"
        "            authtoken_rows.insert(c, AuthtokenRow(f'at_{sys.argv[2]}{i}', '', 'h', (), '',"
        " datetime.now(UTC)))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "s"), str(n)])
        for n in range(3)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    with Store.open(tmp_path / "s") as store:
        assert store.revision() == 15


def test_another_secret_is_refused(tmp_path: Path) -> None:
    Store.open(tmp_path).close()
    (tmp_path / statedir.SECRET).write_text("ab" * 32 + "\n")
    with pytest.raises(StoreError, match=r"another secret\.key"):
        Store.open(tmp_path)


@pytest.mark.parametrize("content", ["", "not hex", "abcd"])
def test_a_broken_secret_file_is_refused(tmp_path: Path, content: str) -> None:
    (tmp_path / statedir.SECRET).write_text(content)
    with pytest.raises(StoreError, match="not a secret"):
        Store.open(tmp_path)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    Store.open(tmp_path).close()
    with sqlite3.connect(tmp_path / statedir.DATABASE) as db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match="revision 9999, newer than this edgeward knows"):
        Store.open(tmp_path)


def test_not_a_database(tmp_path: Path) -> None:
    (tmp_path / statedir.DATABASE).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a database"):
        Store.open(tmp_path)


def test_state_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(StoreError, match="not a directory"):
        Store.open(tmp_path / "f")


def test_a_url_names_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    with Store.open(tmp_path / "state", url=url) as store:
        assert store.where == url
    assert (tmp_path / "elsewhere.db").exists()
    assert not (tmp_path / "state" / statedir.DATABASE).exists()
    assert (tmp_path / "state" / statedir.SECRET).exists()


def test_a_url_without_its_driver_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open") as caught:
        Store.open(tmp_path, url="postgresql+nosuchdriver://u:hunter2@db/edgeward")
    assert "hunter2" not in str(caught.value)


def test_a_database_that_does_not_answer_is_a_store_error(tmp_path: Path) -> None:
    from tests.proxy.proxy_support import free_port

    with pytest.raises(StoreError, match="database error") as caught:
        Store.open(tmp_path, url=f"postgresql://u:hunter2@127.0.0.1:{free_port()}/edgeward")
    assert "hunter2" not in str(caught.value)


def test_resolve_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(statedir.ENV, raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    assert statedir.resolve() == tmp_path / "home" / ".local" / "state" / "edgeward"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")  # the spec: absolute only
    assert statedir.resolve() == tmp_path / "home" / ".local" / "state" / "edgeward"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert statedir.resolve() == tmp_path / "xdg" / "edgeward"
    monkeypatch.setenv(statedir.ENV, str(tmp_path / "env"))
    assert statedir.resolve() == tmp_path / "env"
    assert statedir.resolve(tmp_path / "given") == tmp_path / "given"
    monkeypatch.chdir(tmp_path)
    assert statedir.resolve(Path("rel")) == tmp_path / "rel"


def _tables(conn: object) -> set[str]:
    rows = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))  # type: ignore[attr-defined]
    return {r[0] for r in rows}


def test_sql_for_a_dba() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "edgeward.store", "sql", "--url", "sqlite://"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ},
    )
    assert "CREATE TABLE authtokens" in done.stdout
    assert "INSERT INTO store_state" in done.stdout
