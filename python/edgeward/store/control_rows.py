"""The control plane's tables (IP policies and rules, IP restrictions,
endpoints made through the API, the inspector's opt-ins, vaults and secrets): rows in, rows out.
What they mean is `edgeward.control`'s business. Every function runs inside
the caller's transaction (`Store.read()` / `Store.write()`).

One dataclass per table, and five functions shared by all of them (the
tables differ only in their columns).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, delete, insert, select, update

from edgeward.store import schema


@dataclass(frozen=True, slots=True)
class IpPolicyRow:
    id: str
    description: str
    metadata: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IpPolicyRuleRow:
    id: str
    ip_policy_id: str
    cidr: str
    action: str  # allow, deny
    description: str
    metadata: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IpRestrictionRow:
    id: str
    type: str  # dashboard, api, agent, endpoints
    enforced: bool
    ip_policy_ids: tuple[str, ...]
    description: str
    metadata: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CloudEndpointRow:
    id: str
    url: str
    traffic_policy: str
    description: str
    metadata: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class InspectionRow:
    """The traffic inspector's opt-in for the endpoint `id` (any kind)."""

    id: str
    enabled: bool
    max_requests: int  # captures kept on each edge node (a ring)
    max_body_bytes: int  # of each body kept; the rest is cut, marked truncated
    updated_by: str  # the principal that last set it
    created_at: datetime


@dataclass(frozen=True, slots=True)
class VaultRow:
    id: str
    name: str
    description: str
    metadata: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SecretRow:
    id: str
    vault_id: str
    name: str
    sealed_value: str  # `store.secret.seal`: never the value itself
    description: str
    metadata: str
    created_at: datetime
    updated_at: datetime


Row = TypeVar(
    "Row",
    IpPolicyRow,
    IpPolicyRuleRow,
    IpRestrictionRow,
    CloudEndpointRow,
    InspectionRow,
    VaultRow,
    SecretRow,
)

TABLES: dict[type[Any], Table] = {
    IpPolicyRow: schema.ip_policies,
    IpPolicyRuleRow: schema.ip_policy_rules,
    IpRestrictionRow: schema.ip_restrictions,
    CloudEndpointRow: schema.cloud_endpoints,
    InspectionRow: schema.endpoint_inspections,
    VaultRow: schema.vaults,
    SecretRow: schema.secrets,
}


def _values(row: object) -> dict[str, Any]:
    values = {f.name: getattr(row, f.name) for f in dataclasses.fields(row)}  # type: ignore[arg-type]
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def _row(kind: type[Row], mapping: Any) -> Row:
    values: dict[str, Any] = {}
    for f in dataclasses.fields(kind):
        value = mapping[f.name]
        values[f.name] = tuple(value) if isinstance(value, list) else value
    return kind(**values)


def add(conn: Connection, row: Row) -> None:
    conn.execute(insert(TABLES[type(row)]).values(**_values(row)))


def select_all(conn: Connection, kind: type[Row], **where: str) -> list[Row]:
    """The rows (with columns equal to `where`), oldest first."""
    table = TABLES[kind]
    query = select(table).order_by(table.c.created_at, table.c.id)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    return [_row(kind, r._mapping) for r in conn.execute(query)]


def get(conn: Connection, kind: type[Row], id: str) -> Row | None:
    table = TABLES[kind]
    found = conn.execute(select(table).where(table.c.id == id)).first()
    return _row(kind, found._mapping) if found is not None else None


def change(conn: Connection, kind: type[Row], id: str, **values: Any) -> Row | None:
    """Set the given columns (values of None are kept); None when there is
    no such row."""
    table = TABLES[kind]
    wanted = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items() if v is not None}
    if wanted:
        conn.execute(update(table).where(table.c.id == id).values(**wanted))
    return get(conn, kind, id)


def remove(conn: Connection, kind: type[Any], id: str) -> bool:
    """Delete (a policy's rules and a vault's secrets with it); False when
    there was no such row."""
    table = TABLES[kind]
    if kind is IpPolicyRow:  # ON DELETE CASCADE, also where foreign keys are off
        conn.execute(
            delete(schema.ip_policy_rules).where(schema.ip_policy_rules.c.ip_policy_id == id)
        )
    if kind is VaultRow:
        conn.execute(delete(schema.secrets).where(schema.secrets.c.vault_id == id))
    return conn.execute(delete(table).where(table.c.id == id)).rowcount > 0


__all__ = [
    "CloudEndpointRow",
    "InspectionRow",
    "IpPolicyRow",
    "IpPolicyRuleRow",
    "IpRestrictionRow",
    "SecretRow",
    "VaultRow",
    "add",
    "change",
    "get",
    "remove",
    "select_all",
]
