"""The console/API web sessions, the login states (OIDC transactions, SAML
request and assertion ids: each usable once) and the break-glass local
admins: rows in, rows out. Their meaning is `edgeward.admin.session` and
`edgeward.admin.sso`'s business."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from edgeward.store.schema import break_glass, login_states, web_sessions


@dataclass(frozen=True, slots=True)
class WebSessionRow:
    id: str  # hex SHA-256 of the cookie's token
    principal_id: str
    principal_type: str
    role: str
    csrf: str
    method: str
    client_ip: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class BreakGlassRow:
    username: str
    password_hash: str
    totp_secret: str  # sealed
    totp_last_step: int
    created_at: datetime


def insert_session(conn: Connection, row: WebSessionRow) -> None:
    conn.execute(
        insert(web_sessions).values(
            id=row.id,
            principal_id=row.principal_id,
            principal_type=row.principal_type,
            role=row.role,
            csrf=row.csrf,
            method=row.method,
            client_ip=row.client_ip,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            expires_at=row.expires_at,
        )
    )


def get_session(conn: Connection, id: str) -> WebSessionRow | None:
    found = conn.execute(select(web_sessions).where(web_sessions.c.id == id)).first()
    return _session(found) if found is not None else None


def touch_session(conn: Connection, id: str, when: datetime) -> None:
    conn.execute(update(web_sessions).where(web_sessions.c.id == id).values(last_seen_at=when))


def remove_session(conn: Connection, id: str) -> bool:
    return conn.execute(delete(web_sessions).where(web_sessions.c.id == id)).rowcount > 0


def remove_sessions_of(conn: Connection, principal_id: str) -> int:
    done = conn.execute(delete(web_sessions).where(web_sessions.c.principal_id == principal_id))
    return int(done.rowcount)


def purge(conn: Connection, now: datetime) -> None:
    """Drop expired sessions and login states."""
    conn.execute(delete(web_sessions).where(web_sessions.c.expires_at < now))
    conn.execute(delete(login_states).where(login_states.c.expires_at < now))


def add_state(conn: Connection, key: str, data: dict[str, Any], expires_at: datetime) -> bool:
    """Record `key` unless present (and unexpired): False when it was
    already there, which is how a replay is recognised."""
    found = conn.execute(select(login_states.c.expires_at).where(login_states.c.key == key)).first()
    if found is not None:
        return False
    conn.execute(insert(login_states).values(key=key, data=data, expires_at=expires_at))
    return True


def peek_state(conn: Connection, key: str, now: datetime) -> dict[str, Any] | None:
    """Read without using; None when absent or expired."""
    found = conn.execute(select(login_states).where(login_states.c.key == key)).first()
    if found is None or found._mapping["expires_at"] < now:
        return None
    return dict(found._mapping["data"])


def take_state(conn: Connection, key: str, now: datetime) -> dict[str, Any] | None:
    """Get and delete (single use); None when absent or expired."""
    found = conn.execute(select(login_states).where(login_states.c.key == key)).first()
    if found is None:
        return None
    conn.execute(delete(login_states).where(login_states.c.key == key))
    m = found._mapping
    if m["expires_at"] < now:
        return None
    data: dict[str, Any] = dict(m["data"])
    return data


def insert_break_glass(conn: Connection, row: BreakGlassRow) -> None:
    conn.execute(delete(break_glass).where(break_glass.c.username == row.username))
    conn.execute(
        insert(break_glass).values(
            username=row.username,
            password_hash=row.password_hash,
            totp_secret=row.totp_secret,
            totp_last_step=row.totp_last_step,
            created_at=row.created_at,
        )
    )


def get_break_glass(conn: Connection, username: str) -> BreakGlassRow | None:
    found = conn.execute(select(break_glass).where(break_glass.c.username == username)).first()
    if found is None:
        return None
    m = found._mapping
    return BreakGlassRow(
        m["username"], m["password_hash"], m["totp_secret"], int(m["totp_last_step"]),
        m["created_at"],
    )  # fmt: skip


def use_totp_step(conn: Connection, username: str, step: int) -> bool:
    """Record that the code of `step` was used: False when it (or a later
    one) already was, so a code is good once."""
    done = conn.execute(
        update(break_glass)
        .where(break_glass.c.username == username, break_glass.c.totp_last_step < step)
        .values(totp_last_step=step)
    )
    return done.rowcount > 0


def _session(r: Row[tuple[object, ...]] | Row[object]) -> WebSessionRow:
    m = r._mapping
    return WebSessionRow(
        id=m["id"],
        principal_id=m["principal_id"],
        principal_type=m["principal_type"],
        role=m["role"],
        csrf=m["csrf"],
        method=m["method"],
        client_ip=m["client_ip"],
        created_at=m["created_at"],
        last_seen_at=m["last_seen_at"],
        expires_at=m["expires_at"],
    )


__all__ = [
    "BreakGlassRow",
    "WebSessionRow",
    "add_state",
    "get_break_glass",
    "get_session",
    "insert_break_glass",
    "insert_session",
    "peek_state",
    "purge",
    "remove_session",
    "remove_sessions_of",
    "take_state",
    "touch_session",
    "use_totp_step",
]
