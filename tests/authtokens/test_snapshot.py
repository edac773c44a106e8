"""The in-memory snapshot the edge authenticates against."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import update

from edgeward.authtokens import Acl, HostBind, manage, snapshot, tokens
from edgeward.store import AuthtokenRow, Store, authtoken_rows
from edgeward.store.schema import authtokens


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store.open(tmp_path / "state") as opened:
        yield opened  # type: ignore[misc]


def create(store: Store, *rules: str) -> manage.Created:
    return manage.create(store, acl=Acl.parse(list(rules)), description="t")


def test_authenticate(store: Store) -> None:
    alice = create(store, "bind:alice.internal")
    bob = create(store, "bind:*.bob.dev.example.com")
    snap = snapshot.load(store)
    found = snap.authenticate(alice.token.text)
    assert found is not None and found.id == alice.row.id
    assert found.acl.allows(HostBind("alice.internal")).allowed
    assert not found.acl.allows(HostBind("bob.internal")).allowed
    assert snap.authenticate(bob.token.text) == snap.get(bob.row.id)
    assert len(snap) == 2 and alice.row.id in snap


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # wrong secret, right id
        lambda t: t[:4] + "a" * 16 + t[20:],  # unknown id, right secret
        lambda t: t + "x",  # malformed
        lambda t: "",
        lambda t: t.upper(),
    ],
)
def test_authenticate_refuses(store: Store, tamper: object) -> None:
    created = create(store, "*")
    snap = snapshot.load(store)
    assert snap.authenticate(tamper(created.token.text)) is None  # type: ignore[operator]


def test_revoked_tokens_are_not_in_the_snapshot(store: Store) -> None:
    created = create(store, "*")
    kept = create(store, "*")
    before = snapshot.load(store)
    manage.revoke(store, created.row.id)
    after = snapshot.load(store)
    assert after.revision > before.revision
    assert before.authenticate(created.token.text) is not None  # snapshots are immutable
    assert after.authenticate(created.token.text) is None and created.row.id not in after
    assert after.authenticate(kept.token.text) is not None
    assert before.superseded(after) == {created.row.id}
    assert after.superseded(before) == set() and after.superseded(after) == set()


def test_superseded_sees_acl_changes(store: Store) -> None:
    created = create(store, "bind:a.internal")
    before = snapshot.load(store)
    with store.write() as conn:  # as an admin API's update would (issue 14)
        conn.execute(update(authtokens).values(acl=["bind:b.internal"]))
    assert before.superseded(snapshot.load(store)) == {created.row.id}


def test_a_row_whose_acl_no_longer_parses_fails_closed(store: Store) -> None:
    token = tokens.generate()
    row = AuthtokenRow(
        id=token.id,
        description="hand-edited",
        token_hash=tokens.TokenHasher(store.secret).digest(token),
        acl=("bind:*.*.bad",),
        metadata="",
        created_at=datetime.now(UTC),
    )
    with store.write() as conn:
        authtoken_rows.insert(conn, row)
    snap = snapshot.load(store)
    assert snap.authenticate(token.text) is None
    assert "whole leftmost label" in snap.problems[token.id]


def test_snapshot_is_immutable(store: Store) -> None:
    create(store, "*")
    snap = snapshot.load(store)
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.revision = 99  # type: ignore[misc]
    with pytest.raises(TypeError):
        snap._entries["x"] = None  # type: ignore[index]
