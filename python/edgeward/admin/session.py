"""Web sessions of the console and the API: made by an SSO (or break-glass)
login, carried by a cookie, kept server-side in the state store.

- The cookie holds 256 random bits; the store keeps only their SHA-256 (a
  copy of the database has no usable session). Over https it is
  `__Host-edgeward-session; Secure; HttpOnly; SameSite=Lax; Path=/` (bound
  to the API's host, never sent over http or to a subdomain); a loopback
  http `public_url` (tests only) drops `__Host-` and `Secure`.
- Every login makes a new session (no fixation); logout deletes it
  server-side, so a copied cookie stops working at once.
- Sessions end after `max_duration`, or `idle_duration` without a request.
- Each session has a CSRF token: forms carry it as `csrf_token`, API
  writes as the `X-CSRF-Token` header, compared in constant time.
  (`SameSite=Lax` already keeps the cookie off cross-site POSTs; the token
  is the second lock.)

Blocking functions on the `Store`: the handlers run them in worker threads.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from edgeward.store import Store
from edgeward.store.web_session_rows import (
    WebSessionRow,
    get_session,
    insert_session,
    purge,
    remove_session,
    touch_session,
)

SECURE_COOKIE = "__Host-edgeward-session"
PLAIN_COOKIE = "edgeward-session"  # loopback http only (tests)
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
TOUCH_EVERY = timedelta(seconds=30)  # last_seen is written at most this often


@dataclass(frozen=True, slots=True)
class Made:
    token: str  # the cookie's value: never stored, never logged
    row: WebSessionRow


def cookie_name(secure: bool) -> str:
    return SECURE_COOKIE if secure else PLAIN_COOKIE


def set_cookie(token: str, *, secure: bool, max_age: int) -> str:
    flags = "; Secure" if secure else ""
    return (
        f"{cookie_name(secure)}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{flags}"
    )


def clear_cookie(*, secure: bool) -> str:
    flags = "; Secure" if secure else ""
    return f"{cookie_name(secure)}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{flags}"


def _id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(
    store: Store,
    *,
    principal_id: str,
    principal_type: str,
    role: str,
    method: str,
    client_ip: str,
    max_duration: float,
) -> Made:
    now = datetime.now(UTC)
    token = secrets.token_urlsafe(32)
    row = WebSessionRow(
        id=_id(token),
        principal_id=principal_id,
        principal_type=principal_type,
        role=role,
        csrf=secrets.token_urlsafe(32),
        method=method,
        client_ip=client_ip[:64],
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=max_duration),
    )
    with store.write() as conn:
        purge(conn, now)
        insert_session(conn, row)
    return Made(token, row)


def lookup(store: Store, token: str, *, idle_duration: float) -> WebSessionRow | None:
    """The live session `token` names, else None (unknown, ended, expired
    or idle too long: such a row is deleted)."""
    if not token or len(token) > 128:
        return None
    now = datetime.now(UTC)
    with store.read() as conn:
        row = get_session(conn, _id(token))
    if row is None:
        return None
    idle = now - row.last_seen_at > timedelta(seconds=idle_duration)
    if row.expires_at <= now or idle:
        with store.write() as conn:
            remove_session(conn, row.id)
        return None
    if now - row.last_seen_at > TOUCH_EVERY:
        with store.write() as conn:
            touch_session(conn, row.id, now)
    return row


def end(store: Store, token: str) -> WebSessionRow | None:
    """Log out: the session is deleted; what it was, for the audit."""
    if not token or len(token) > 128:
        return None
    with store.write() as conn:
        row = get_session(conn, _id(token))
        if row is not None:
            remove_session(conn, row.id)
    return row


def csrf_ok(row: WebSessionRow, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(row.csrf.encode(), (presented or "").encode())


__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "Made",
    "clear_cookie",
    "cookie_name",
    "create",
    "csrf_ok",
    "end",
    "lookup",
    "set_cookie",
]
