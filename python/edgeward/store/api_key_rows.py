"""The `api_keys` table: rows in, rows out. What a key means (its format,
hashing, roles) is `edgeward.admin`'s business. Every function runs inside
the caller's transaction (`Store.read()` / `Store.write()`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Row, delete
from sqlalchemy import insert as sql_insert
from sqlalchemy import select as sql_select

from edgeward.store.schema import api_keys, update_described


@dataclass(frozen=True, slots=True)
class ApiKeyRow:
    id: str
    description: str
    metadata: str
    token_hash: str
    role: str
    acl: tuple[str, ...]  # canonical bind rules a developer may grant
    created_at: datetime
    owner_id: str | None = None


def insert(conn: Connection, row: ApiKeyRow) -> None:
    conn.execute(
        sql_insert(api_keys).values(
            id=row.id,
            description=row.description,
            metadata=row.metadata,
            token_hash=row.token_hash,
            role=row.role,
            acl=list(row.acl),
            owner_id=row.owner_id,
            created_at=row.created_at,
        )
    )


def select(conn: Connection) -> list[ApiKeyRow]:
    """All rows, oldest first."""
    query = sql_select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
    return [_row(r) for r in conn.execute(query)]


def get(conn: Connection, id: str) -> ApiKeyRow | None:
    found = conn.execute(sql_select(api_keys).where(api_keys.c.id == id)).first()
    return _row(found) if found is not None else None


def count(conn: Connection) -> int:
    return len(conn.execute(sql_select(api_keys.c.id)).all())


def update_fields(
    conn: Connection,
    id: str,
    *,
    description: str | None = None,
    metadata: str | None = None,
    acl: tuple[str, ...] | None = None,
) -> ApiKeyRow | None:
    """Change the given fields (None: keep). None when there is no such row."""
    update_described(conn, api_keys, id, description=description, metadata=metadata, acl=acl)
    return get(conn, id)


def remove(conn: Connection, id: str) -> bool:
    """Delete; False when there was no such row."""
    return conn.execute(delete(api_keys).where(api_keys.c.id == id)).rowcount > 0


def _row(r: Row[tuple[object, ...]] | Row[object]) -> ApiKeyRow:
    m = r._mapping
    return ApiKeyRow(
        id=m["id"],
        description=m["description"],
        metadata=m["metadata"],
        token_hash=m["token_hash"],
        role=m["role"],
        acl=tuple(m["acl"]),
        created_at=m["created_at"],
        owner_id=m["owner_id"],
    )


__all__ = ["ApiKeyRow", "count", "get", "insert", "remove", "select", "update_fields"]
