"""The `authtokens` table: rows in, rows out. What a row means (token
format, hashing, ACL grammar) is `edgeward.authtokens`' business; this
module only stores it. Every function runs inside the caller's transaction
(`Store.read()` / `Store.write()`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Row
from sqlalchemy import insert as sql_insert
from sqlalchemy import select as sql_select
from sqlalchemy import update as sql_update

from edgeward.store.schema import authtokens, update_described


@dataclass(frozen=True, slots=True)
class AuthtokenRow:
    id: str
    description: str
    token_hash: str
    acl: tuple[str, ...]  # canonical rule texts; () = unrestricted
    metadata: str
    created_at: datetime
    revoked_at: datetime | None = None
    owner_id: str | None = None  # the API key that created it; None: the CLI

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def insert(conn: Connection, row: AuthtokenRow) -> None:
    conn.execute(
        sql_insert(authtokens).values(
            id=row.id,
            description=row.description,
            token_hash=row.token_hash,
            acl=list(row.acl),
            metadata=row.metadata,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
            owner_id=row.owner_id,
        )
    )


def select(conn: Connection, *, revoked: bool = True) -> list[AuthtokenRow]:
    """All rows, oldest first; without the revoked ones unless `revoked`."""
    query = sql_select(authtokens).order_by(authtokens.c.created_at, authtokens.c.id)
    if not revoked:
        query = query.where(authtokens.c.revoked_at.is_(None))
    return [_row(r) for r in conn.execute(query)]


def get(conn: Connection, id: str) -> AuthtokenRow | None:
    found = conn.execute(sql_select(authtokens).where(authtokens.c.id == id)).first()
    return _row(found) if found is not None else None


def revoke(conn: Connection, id: str, at: datetime) -> AuthtokenRow | None:
    """Mark revoked at `at` (once: a second revoke keeps the first time).
    None when there is no such row."""
    conn.execute(
        sql_update(authtokens)
        .where(authtokens.c.id == id, authtokens.c.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    return get(conn, id)


def update(
    conn: Connection,
    id: str,
    *,
    description: str | None = None,
    metadata: str | None = None,
    acl: tuple[str, ...] | None = None,
) -> AuthtokenRow | None:
    """Change the given fields (None: keep). None when there is no such row."""
    update_described(conn, authtokens, id, description=description, metadata=metadata, acl=acl)
    return get(conn, id)


def _row(r: Row[tuple[object, ...]] | Row[object]) -> AuthtokenRow:
    m = r._mapping
    return AuthtokenRow(
        id=m["id"],
        description=m["description"],
        token_hash=m["token_hash"],
        acl=tuple(m["acl"]),
        metadata=m["metadata"],
        created_at=m["created_at"],
        revoked_at=m["revoked_at"],
        owner_id=m["owner_id"],
    )


__all__ = ["AuthtokenRow", "get", "insert", "revoke", "select", "update"]
