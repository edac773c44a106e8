"""Users and invitations: the people who sign in to the console and the API
with the company's SSO (docs/control-plane.md#users-and-invitations).

An admin invites an email with a role (and, for a developer, the grant:
the bind rules its authtokens may have). That makes the user (not yet
bound to any SSO identity) and an invitation whose link carries a random
token:

    https://admin.example.com/invite/ewi_k3j5q2m7x4b6n8p2_Zm9vYmFy...

Only a keyed hash of the token is stored (as API keys'); the link expires
(7 days by default) and is good once: the first SSO login that follows it
with the invited email binds that SSO identity (`oidc|<issuer>|<sub>` or
`saml|<idp>|<name id>`) to the user. From then on the user is found by that
identity, never by email alone, so a second account at the IdP with the
same address (or a renamed one) does not get in.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from edgeward.admin.keys import check_role
from edgeward.authtokens.acl import Acl
from edgeward.authtokens.manage import InputError
from edgeward.authtokens.tokens import Token, TokenHasher
from edgeward.errors import EdgewardError
from edgeward.store import Store
from edgeward.store.user_rows import (
    InvitationRow,
    UserRow,
    get_invitation,
    get_user,
    insert_invitation,
    insert_user,
    mark_used,
    remove_invitation,
    remove_unused_invitations,
    remove_user,
    select_invitations,
    select_users,
    update_user,
    user_by_email,
    user_by_subject,
)
from edgeward.store.web_session_rows import remove_sessions_of

INVITE_TTL = timedelta(days=7)
USER_PREFIX = "usr_"
INVITATION_PREFIX = "inv_"
TOKEN_PREFIX = "ewi_"
PURPOSE = b"edgeward invitation hash v1"
_TOKEN = re.compile(rf"{TOKEN_PREFIX}(?P<id>[a-z2-7]{{16}})_(?P<secret>[A-Za-z0-9_-]{{43}})\Z")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}\Z")


class UnknownUser(EdgewardError):
    def __init__(self, id: str) -> None:
        super().__init__(f"no user {id!r}")


class UnknownInvitation(EdgewardError):
    def __init__(self, id: str) -> None:
        super().__init__(f"no invitation {id!r}")


class LoginRefused(EdgewardError):
    """An SSO identity that may not sign in; the message is for the page."""


@dataclass(frozen=True, slots=True)
class Invited:
    user: UserRow
    invitation: InvitationRow
    token: Token  # token.text is shown once (in the link), then forgotten


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Who an SSO login signs in as; `accepted` is the invitation this
    login used (its first: the identity was bound now, an event of its own)."""

    user: UserRow
    accepted: InvitationRow | None = None


def _random_id(prefix: str) -> str:
    return prefix + base64.b32encode(secrets.token_bytes(10)).decode().lower()


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise InputError("email", f"not an email address: {email!r}")
    return email


def _grant(role: str, acl: Acl | None) -> tuple[str, ...]:
    if acl is not None and acl.rules and role != "developer":
        raise InputError("acl", "only a developer carries an ACL grant")
    return acl.texts if acl is not None else ()


def hasher(store: Store) -> TokenHasher:
    return TokenHasher(store.secret, PURPOSE)


def parse_token(text: str) -> Token | None:
    match = _TOKEN.match(text)
    return Token(INVITATION_PREFIX + match["id"], text) if match is not None else None


def invite(
    store: Store,
    *,
    email: str,
    role: str,
    acl: Acl | None = None,
    created_by: str | None = None,
    ttl: timedelta = INVITE_TTL,
    now: datetime | None = None,
) -> Invited:
    """Make (or re-invite) the user `email` and a new invitation for it
    (which revokes the user's open ones). A user already bound to an SSO
    identity is not invited again (`InputError` on email)."""
    email = normalise_email(email)
    checked = check_role(role)
    grant = _grant(checked, acl)
    now = now or datetime.now(UTC)
    id_part = base64.b32encode(secrets.token_bytes(10)).decode().lower()
    token = Token(
        INVITATION_PREFIX + id_part, f"{TOKEN_PREFIX}{id_part}_{secrets.token_urlsafe(32)}"
    )
    with store.write() as conn:
        user = user_by_email(conn, email)
        if user is not None and user.sso_subject is not None:
            raise InputError("email", f"{email} is already a user who has signed in")
        if user is None:
            user = UserRow(_random_id(USER_PREFIX), email, checked, grant, now)
            insert_user(conn, user)
        else:  # invited again: the new link replaces the open ones
            remove_unused_invitations(conn, user.id)
            found = update_user(conn, user.id, role=checked, acl=grant)
            assert found is not None
            user = found
        invitation = InvitationRow(
            id=token.id,
            user_id=user.id,
            email=email,
            token_hash=hasher(store).digest(token),
            created_at=now,
            expires_at=now + ttl,
            created_by=created_by,
        )
        insert_invitation(conn, invitation)
    return Invited(user, invitation, token)


def check_invitation(store: Store, text: str, now: datetime | None = None) -> InvitationRow:
    """The invitation a link's token names, if it can still be used
    (`LoginRefused` otherwise). Does not use it: the login does."""
    now = now or datetime.now(UTC)
    token = parse_token(text)
    with store.read() as conn:
        row = get_invitation(conn, token.id) if token is not None else None
    return _usable(store, row, token, now)


def _usable(
    store: Store, row: InvitationRow | None, token: Token | None, now: datetime
) -> InvitationRow:
    if row is None or token is None or not hasher(store).verify(token, row.token_hash):
        raise LoginRefused("This invitation link is not valid.")
    if row.used_at is not None:
        raise LoginRefused("This invitation link was already used.")
    if row.expires_at <= now:
        raise LoginRefused("This invitation link has expired: ask an admin for a new one.")
    return row


def login(
    store: Store, *, subject: str, email: str, invitation: str | None, now: datetime | None = None
) -> SignedIn:
    """The user an SSO identity signs in as. Bound already: that user.
    Else the invitation (from the link the browser followed) must be
    usable and for this email; it is used, and the identity bound."""
    now = now or datetime.now(UTC)
    with store.write() as conn:
        user = user_by_subject(conn, subject)
        if user is not None:
            found = update_user(conn, user.id, last_login_at=now)
            assert found is not None
            return SignedIn(found)
        if not invitation:
            raise LoginRefused(
                "There is no account for this identity here. Ask an admin for an invitation,"
                " then open its link."
            )
        token = parse_token(invitation)
        row = get_invitation(conn, token.id) if token is not None else None
        checked = _usable(store, row, token, now)
        if not email or email.strip().lower() != checked.email:
            raise LoginRefused(
                f"This invitation is for {checked.email}; you signed in as {email or 'no email'}."
            )
        user = get_user(conn, checked.user_id)
        if user is None or user.sso_subject is not None:
            raise LoginRefused("This invitation link is not valid.")
        if not mark_used(conn, checked.id, now):
            raise LoginRefused("This invitation link was already used.")
        bound = update_user(conn, user.id, sso_subject=subject, last_login_at=now)
        assert bound is not None
        return SignedIn(bound, checked)


def list_users(store: Store) -> list[UserRow]:
    with store.read() as conn:
        return select_users(conn)


def get(store: Store, id: str) -> UserRow:
    with store.read() as conn:
        row = get_user(conn, id)
    if row is None:
        raise UnknownUser(id)
    return row


def update(
    store: Store,
    id: str,
    *,
    role: str | None = None,
    acl: Acl | None = None,
    check: Callable[[UserRow], None] | None = None,
) -> UserRow:
    """Change a user's role or grant; `check(current)` first, in the same
    transaction (If-Match). A role change ends the user's web sessions (they
    carry the role they were made with)."""
    with store.write() as conn:
        current = get_user(conn, id)
        if current is None:
            raise UnknownUser(id)
        if check is not None:
            check(current)
        new_role = check_role(role) if role is not None else current.role
        grant = _grant(new_role, acl) if acl is not None else current.acl
        if new_role != "developer":
            grant = ()
        row = update_user(conn, id, role=new_role, acl=grant)
        if new_role != current.role:
            remove_sessions_of(conn, id)
    assert row is not None
    return row


def delete(store: Store, id: str, check: Callable[[UserRow], None] | None = None) -> UserRow:
    """Remove a user, its invitations and its web sessions."""
    with store.write() as conn:
        current = get_user(conn, id)
        if current is None:
            raise UnknownUser(id)
        if check is not None:
            check(current)
        remove_user(conn, id)
        remove_sessions_of(conn, id)
    return current


def list_invitations(store: Store) -> list[InvitationRow]:
    with store.read() as conn:
        return select_invitations(conn)


def get_invitation_row(store: Store, id: str) -> InvitationRow:
    with store.read() as conn:
        row = get_invitation(conn, id)
    if row is None:
        raise UnknownInvitation(id)
    return row


def delete_invitation(
    store: Store, id: str, check: Callable[[InvitationRow], None] | None = None
) -> InvitationRow:
    """Revoke an invitation (its link stops working)."""
    with store.write() as conn:
        row = get_invitation(conn, id)
        if row is None:
            raise UnknownInvitation(id)
        if check is not None:
            check(row)
        remove_invitation(conn, id)
    return row


__all__ = [
    "INVITE_TTL",
    "USER_PREFIX",
    "Invited",
    "LoginRefused",
    "SignedIn",
    "UnknownInvitation",
    "UnknownUser",
    "check_invitation",
    "delete",
    "delete_invitation",
    "get",
    "get_invitation_row",
    "invite",
    "list_invitations",
    "list_users",
    "login",
    "normalise_email",
    "parse_token",
    "update",
]
