"""Event destinations and subscriptions in the state store: create, read,
change, delete, validated by `spec` (the admin API calls these; the store's
watcher `load`s them for the bus). Blocking: trio code runs them in a
worker thread (`AsyncStore.run`)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from edgeward.events import spec
from edgeward.events.errors import SpecError
from edgeward.store import Store, event_rows
from edgeward.store.event_rows import DestinationRow, SubscriptionRow

R = TypeVar("R", DestinationRow, SubscriptionRow)
PREFIX = {DestinationRow: "ed_", SubscriptionRow: "esb_"}


class UnknownEvent(LookupError):
    """No such destination or subscription."""


def _id(prefix: str) -> str:
    return prefix + base64.b32encode(secrets.token_bytes(10)).decode().lower()


def _text(data: Mapping[str, Any], name: str, limit: int) -> str:
    value = data.get(name) or ""
    if not isinstance(value, str):
        raise SpecError(name, "must be a string")
    if len(value.encode()) > limit:
        raise SpecError(name, f"at most {limit} bytes")
    return value


def destination_spec(row: DestinationRow) -> spec.DestinationSpec:
    return spec.destination(row.id, row.format, row.target, row.description)


def subscription_spec(row: SubscriptionRow) -> spec.SubscriptionSpec:
    return spec.subscription(row.id, list(row.sources), list(row.destination_ids), row.filter)


def _destination(id: str, created: datetime, data: Mapping[str, Any]) -> DestinationRow:
    checked = spec.destination(id, data.get("format"), data.get("target"))
    target = {checked.kind: dict(data["target"][checked.kind])}  # as given (token included)
    return DestinationRow(
        id,
        _text(data, "description", 255),
        _text(data, "metadata", 4096),
        checked.format,
        target,
        created,
    )


def _subscription(
    conn: Any, id: str, created: datetime, data: Mapping[str, Any]
) -> SubscriptionRow:
    sources = data.get("sources") or []
    if not isinstance(sources, list) or not all(
        isinstance(s, Mapping) and isinstance(s.get("type"), str) for s in sources
    ):
        raise SpecError("sources", 'must be a list of {"type": "<event type or glob>"}')
    types = [s["type"] for s in sources]
    ids = data.get("destination_ids") or []
    checked = spec.subscription(id, types, ids, data.get("filter"))
    known = {r.id for r in event_rows.select_all(conn, DestinationRow)}
    for i, d in enumerate(checked.destination_ids):
        if d not in known:
            raise SpecError(f"destination_ids[{i}]", f"no event destination {d!r}")
    return SubscriptionRow(
        id,
        _text(data, "description", 255),
        _text(data, "metadata", 4096),
        checked.types,
        checked.destination_ids,
        checked.filter,
        created,
    )


def create(store: Store, kind: type[R], data: Mapping[str, Any]) -> R:
    now = datetime.now(UTC).replace(microsecond=0)
    with store.write() as conn:
        row: Any = (
            _destination(_id("ed_"), now, data)
            if kind is DestinationRow
            else _subscription(conn, _id("esb_"), now, data)
        )
        event_rows.insert_row(conn, row)
    assert isinstance(row, kind)
    return row


def list_all(store: Store, kind: type[R]) -> list[R]:
    with store.read() as conn:
        return event_rows.select_all(conn, kind)


def get(store: Store, kind: type[R], id: str) -> R:
    with store.read() as conn:
        row = event_rows.get(conn, kind, id)
    if row is None:
        raise UnknownEvent(id)
    assert isinstance(row, kind)
    return row


def update(
    store: Store, kind: type[R], id: str, data: Mapping[str, Any], check: Callable[[R], None]
) -> R:
    """Change the given fields (absent: keep); `check(current)` runs in the
    transaction first (If-Match) and may raise."""
    with store.write() as conn:
        current = event_rows.get(conn, kind, id)
        if current is None:
            raise UnknownEvent(id)
        check(current)
        if isinstance(current, DestinationRow):
            merged: dict[str, Any] = {
                "description": current.description,
                "metadata": current.metadata,
                "format": current.format,
                "target": current.target,
                **data,
            }
            row: Any = _destination(id, current.created_at, merged)
        else:
            merged = {
                "description": current.description,
                "metadata": current.metadata,
                "sources": [{"type": t} for t in current.sources],
                "destination_ids": list(current.destination_ids),
                "filter": current.filter,
                **data,
            }
            row = _subscription(conn, id, current.created_at, merged)
        event_rows.update_row(conn, row)
    return row  # type: ignore[no-any-return]


def delete(store: Store, kind: type[R], id: str, check: Callable[[R], None]) -> R:
    with store.write() as conn:
        current = event_rows.get(conn, kind, id)
        if current is None:
            raise UnknownEvent(id)
        check(current)
        event_rows.remove(conn, kind, id)
    return current  # type: ignore[no-any-return]


def load(store: Store) -> tuple[list[spec.DestinationSpec], list[spec.SubscriptionSpec]]:
    """What the bus should run, from the store (a row that no longer
    validates is skipped: `spec` got stricter than the row)."""
    with store.read() as conn:
        destinations = event_rows.select_all(conn, DestinationRow)
        subscriptions = event_rows.select_all(conn, SubscriptionRow)
    out_d = []
    for d in destinations:
        try:
            out_d.append(destination_spec(d))
        except SpecError:
            continue
    out_s = []
    for s in subscriptions:
        try:
            out_s.append(subscription_spec(s))
        except SpecError:
            continue
    return out_d, out_s


__all__ = [
    "UnknownEvent",
    "create",
    "delete",
    "destination_spec",
    "get",
    "list_all",
    "load",
    "subscription_spec",
    "update",
]
