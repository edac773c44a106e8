"""The `users` and `invitations` tables: rows in, rows out. What a user,
a role or an invitation means is `edgeward.admin.users`'s business. Every
function runs inside the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Row, delete, insert, select, update

from edgeward.store.schema import invitations, users


@dataclass(frozen=True, slots=True)
class UserRow:
    id: str
    email: str  # lower-case
    role: str
    acl: tuple[str, ...]
    created_at: datetime
    sso_subject: str | None = None  # bound by the first SSO login (an invitation)
    last_login_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class InvitationRow:
    id: str
    user_id: str
    email: str
    token_hash: str
    created_at: datetime
    expires_at: datetime
    created_by: str | None = None
    used_at: datetime | None = None


def insert_user(conn: Connection, row: UserRow) -> None:
    conn.execute(
        insert(users).values(
            id=row.id,
            email=row.email,
            role=row.role,
            acl=list(row.acl),
            sso_subject=row.sso_subject,
            created_at=row.created_at,
            last_login_at=row.last_login_at,
        )
    )


def select_users(conn: Connection) -> list[UserRow]:
    return [_user(r) for r in conn.execute(select(users).order_by(users.c.created_at, users.c.id))]


def get_user(conn: Connection, id: str) -> UserRow | None:
    found = conn.execute(select(users).where(users.c.id == id)).first()
    return _user(found) if found is not None else None


def user_by_email(conn: Connection, email: str) -> UserRow | None:
    found = conn.execute(select(users).where(users.c.email == email)).first()
    return _user(found) if found is not None else None


def user_by_subject(conn: Connection, subject: str) -> UserRow | None:
    found = conn.execute(select(users).where(users.c.sso_subject == subject)).first()
    return _user(found) if found is not None else None


def update_user(conn: Connection, id: str, **values: object) -> UserRow | None:
    """Set the given columns (role, acl, sso_subject, last_login_at)."""
    if "acl" in values and values["acl"] is not None:
        values["acl"] = list(values["acl"])  # type: ignore[call-overload]
    if values:
        conn.execute(update(users).where(users.c.id == id).values(**values))
    return get_user(conn, id)


def remove_user(conn: Connection, id: str) -> bool:
    conn.execute(delete(invitations).where(invitations.c.user_id == id))
    return conn.execute(delete(users).where(users.c.id == id)).rowcount > 0


def insert_invitation(conn: Connection, row: InvitationRow) -> None:
    conn.execute(
        insert(invitations).values(
            id=row.id,
            user_id=row.user_id,
            email=row.email,
            token_hash=row.token_hash,
            created_by=row.created_by,
            created_at=row.created_at,
            expires_at=row.expires_at,
            used_at=row.used_at,
        )
    )


def select_invitations(conn: Connection) -> list[InvitationRow]:
    query = select(invitations).order_by(invitations.c.created_at, invitations.c.id)
    return [_invitation(r) for r in conn.execute(query)]


def get_invitation(conn: Connection, id: str) -> InvitationRow | None:
    found = conn.execute(select(invitations).where(invitations.c.id == id)).first()
    return _invitation(found) if found is not None else None


def mark_used(conn: Connection, id: str, when: datetime) -> bool:
    """Use an invitation once: False when it was already used (the update
    is conditional, so two logins racing cannot both use it)."""
    done = conn.execute(
        update(invitations)
        .where(invitations.c.id == id, invitations.c.used_at.is_(None))
        .values(used_at=when)
    )
    return done.rowcount > 0


def remove_unused_invitations(conn: Connection, user_id: str) -> int:
    """Revoke a user's open invitations (a new one replaces them)."""
    done = conn.execute(
        delete(invitations).where(invitations.c.user_id == user_id, invitations.c.used_at.is_(None))
    )
    return int(done.rowcount)


def remove_invitation(conn: Connection, id: str) -> bool:
    return conn.execute(delete(invitations).where(invitations.c.id == id)).rowcount > 0


def _user(r: Row[tuple[object, ...]] | Row[object]) -> UserRow:
    m = r._mapping
    return UserRow(
        id=m["id"],
        email=m["email"],
        role=m["role"],
        acl=tuple(m["acl"]),
        created_at=m["created_at"],
        sso_subject=m["sso_subject"],
        last_login_at=m["last_login_at"],
    )


def _invitation(r: Row[tuple[object, ...]] | Row[object]) -> InvitationRow:
    m = r._mapping
    return InvitationRow(
        id=m["id"],
        user_id=m["user_id"],
        email=m["email"],
        token_hash=m["token_hash"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        created_by=m["created_by"],
        used_at=m["used_at"],
    )


__all__ = [
    "InvitationRow",
    "UserRow",
    "get_invitation",
    "get_user",
    "insert_invitation",
    "insert_user",
    "mark_used",
    "remove_invitation",
    "remove_unused_invitations",
    "remove_user",
    "select_invitations",
    "select_users",
    "update_user",
    "user_by_email",
    "user_by_subject",
]
