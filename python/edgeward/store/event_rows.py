"""The `event_destinations` and `event_subscriptions` tables: rows in, rows
out. What a target or a filter means is `edgeward.events`' business. Every
function runs inside the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, select, update

from edgeward.store.schema import event_destinations, event_subscriptions


@dataclass(frozen=True, slots=True)
class DestinationRow:
    id: str
    description: str
    metadata: str
    format: str
    target: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SubscriptionRow:
    id: str
    description: str
    metadata: str
    sources: tuple[str, ...]
    destination_ids: tuple[str, ...]
    filter: str
    created_at: datetime


Row = DestinationRow | SubscriptionRow


def _table(kind: type[Row]) -> Table:
    return event_destinations if kind is DestinationRow else event_subscriptions


def _values(row: Row) -> dict[str, Any]:
    if isinstance(row, DestinationRow):
        return {
            "id": row.id,
            "description": row.description,
            "metadata": row.metadata,
            "format": row.format,
            "target": row.target,
            "created_at": row.created_at,
        }
    return {
        "id": row.id,
        "description": row.description,
        "metadata": row.metadata,
        "sources": list(row.sources),
        "destination_ids": list(row.destination_ids),
        "filter": row.filter,
        "created_at": row.created_at,
    }


def _row(kind: type[Row], m: Any) -> Row:
    if kind is DestinationRow:
        return DestinationRow(
            m["id"],
            m["description"],
            m["metadata"],
            m["format"],
            dict(m["target"]),
            m["created_at"],
        )
    return SubscriptionRow(
        m["id"],
        m["description"],
        m["metadata"],
        tuple(m["sources"]),
        tuple(m["destination_ids"]),
        m["filter"],
        m["created_at"],
    )


def insert_row(conn: Connection, row: Row) -> None:
    conn.execute(insert(_table(type(row))).values(**_values(row)))


def select_all(conn: Connection, kind: type[Row]) -> list[Any]:
    """All rows of `kind`, oldest first."""
    table = _table(kind)
    query = select(table).order_by(table.c.created_at, table.c.id)
    return [_row(kind, r._mapping) for r in conn.execute(query)]


def get(conn: Connection, kind: type[Row], id: str) -> Any:
    table = _table(kind)
    found = conn.execute(select(table).where(table.c.id == id)).first()
    return _row(kind, found._mapping) if found is not None else None


def update_row(conn: Connection, row: Row) -> None:
    values = _values(row)
    del values["id"], values["created_at"]
    table = _table(type(row))
    conn.execute(update(table).where(table.c.id == row.id).values(**values))


def remove(conn: Connection, kind: type[Row], id: str) -> bool:
    table = _table(kind)
    return conn.execute(delete(table).where(table.c.id == id)).rowcount > 0


__all__ = [
    "DestinationRow",
    "SubscriptionRow",
    "get",
    "insert_row",
    "remove",
    "select_all",
    "update_row",
]
