"""`edgeward store backup | verify` on real SQLite files, while another
connection keeps writing (as a running edge and the CLI do)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
from pathlib import Path

import pytest
from tests.authtokens.test_cli import edgeward

from edgeward.authtokens import manage, snapshot
from edgeward.authtokens.acl import Acl
from edgeward.store import Store, StoreError, statedir
from edgeward.store.backup import backup, verify


def test_a_backup_taken_during_writes_restores_every_token_it_holds(tmp_path: Path) -> None:
    state, copy = tmp_path / "state", tmp_path / "backup"
    acl = Acl.parse(["bind:*.alice.internal"])
    with Store.open(state) as store:
        before = [manage.create(store, acl=acl).token for _ in range(20)]
    made: list[str] = []
    stop = threading.Event()

    def keep_writing() -> None:  # another process's writes, on their own connection
        with Store.open(state) as writer:
            while not stop.is_set():
                made.append(manage.create(writer, acl=acl).token.text)

    thread = threading.Thread(target=keep_writing)
    thread.start()
    try:
        done = edgeward("store", "backup", str(copy), "--state-dir", str(state), "--json")
    finally:
        stop.set()
        thread.join()
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert 20 <= summary["rows"]["authtokens"] <= 20 + len(made)
    assert stat.S_IMODE(copy.stat().st_mode) == 0o700
    for name in (statedir.DATABASE, statedir.SECRET):
        assert stat.S_IMODE((copy / name).stat().st_mode) == 0o600, name
    assert sorted(os.listdir(copy)) == [statedir.DATABASE, statedir.SECRET]  # self-contained

    restored = tmp_path / "restored"
    shutil.copytree(copy, restored)
    with Store.open(restored) as store:
        tokens = snapshot.load(store)
    assert len(tokens) == summary["rows"]["authtokens"]
    for token in before:  # everything committed before the backup began is in it
        assert tokens.authenticate(token.text) is not None


def test_verify_refuses_a_secret_that_is_not_the_database_s(tmp_path: Path) -> None:
    with Store.open(tmp_path / "state") as store:
        backup(store, tmp_path / "b")
    (tmp_path / "b" / statedir.SECRET).write_text("ab" * 32 + "\n")
    done = edgeward("store", "verify", str(tmp_path / "b"))
    assert done.returncode == 1
    assert "secret.key does not belong to this database" in done.stderr
    assert "Traceback" not in done.stderr


def test_verify_finds_a_damaged_database(tmp_path: Path) -> None:
    with Store.open(tmp_path / "state") as store:
        manage.create(store, acl=Acl.parse(["bind:a.internal"]))
        backup(store, tmp_path / "b")
    database = tmp_path / "b" / statedir.DATABASE
    data = bytearray(database.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the first page's b-tree, past the header
    database.write_bytes(bytes(data))
    with pytest.raises(StoreError):
        verify(tmp_path / "b")
    done = edgeward("store", "verify", str(tmp_path / "b"))
    assert done.returncode == 1 and done.stderr.startswith("edgeward store verify: ")


def test_a_backup_never_overwrites_one(tmp_path: Path) -> None:
    with Store.open(tmp_path / "state") as store:
        first = backup(store, tmp_path / "b")
        manage.create(store, acl=Acl.parse(["bind:a.internal"]))
        with pytest.raises(StoreError, match="a backup is already there"):
            backup(store, tmp_path / "b")
    assert verify(tmp_path / "b").rows == first.rows  # the first backup is untouched


def test_verify_needs_the_secret_beside_the_database(tmp_path: Path) -> None:
    with Store.open(tmp_path / "state") as store:
        backup(store, tmp_path / "b")
    (tmp_path / "b" / statedir.SECRET).unlink()
    with pytest.raises(StoreError, match="a backup needs both"):
        verify(tmp_path / "b")
