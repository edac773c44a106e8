"""Creating, listing and revoking authtokens in the store: what the CLI does
today and the admin API will do (issue 14) with the same functions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from edgeward.authtokens import tokens
from edgeward.authtokens.acl import Acl
from edgeward.errors import EdgewardError
from edgeward.store import AuthtokenRow, Store, authtoken_rows

MAX_DESCRIPTION = 255  # bytes of UTF-8, as ngrok's credential API
MAX_METADATA = 4096


class InputError(EdgewardError):
    """A value given for an authtoken is not acceptable; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class UnknownAuthtoken(EdgewardError):
    def __init__(self, id: str) -> None:
        super().__init__(f"no authtoken {id!r}")
        self.id = id


@dataclass(frozen=True, slots=True)
class Created:
    token: tokens.Token  # token.text is shown once, then forgotten
    row: AuthtokenRow


def create(
    store: Store,
    *,
    acl: Acl,
    description: str = "",
    metadata: str = "",
    owner_id: str | None = None,
) -> Created:
    """A new authtoken: only the keyed hash of its token is stored.
    `owner_id`: the admin API key that made it (None: the CLI)."""
    _limit("description", description, MAX_DESCRIPTION)
    _limit("metadata", metadata, MAX_METADATA)
    token = tokens.generate()
    row = AuthtokenRow(
        id=token.id,
        description=description,
        token_hash=tokens.TokenHasher(store.secret).digest(token),
        acl=acl.texts,
        metadata=metadata,
        created_at=datetime.now(UTC),
        owner_id=owner_id,
    )
    with store.write() as conn:
        authtoken_rows.insert(conn, row)
    return Created(token, row)


def get(store: Store, id: str) -> AuthtokenRow:
    if not tokens.is_id(id):
        raise UnknownAuthtoken(id)
    with store.read() as conn:
        row = authtoken_rows.get(conn, id)
    if row is None:
        raise UnknownAuthtoken(id)
    return row


def update(
    store: Store,
    id: str,
    *,
    description: str | None = None,
    metadata: str | None = None,
    acl: Acl | None = None,
    check: Callable[[AuthtokenRow], None] | None = None,
) -> AuthtokenRow:
    """Change description, metadata or ACL (None: keep). `check(current)`
    runs inside the write transaction first: what it raises aborts the
    change (the admin API's If-Match). A new ACL reaches the edge like a
    revocation: the token's agents are disconnected and may reconnect."""
    if description is not None:
        _limit("description", description, MAX_DESCRIPTION)
    if metadata is not None:
        _limit("metadata", metadata, MAX_METADATA)
    if not tokens.is_id(id):
        raise UnknownAuthtoken(id)
    with store.write() as conn:
        current = authtoken_rows.get(conn, id)
        if current is None:
            raise UnknownAuthtoken(id)
        if check is not None:
            check(current)
        row = authtoken_rows.update(
            conn,
            id,
            description=description,
            metadata=metadata,
            acl=acl.texts if acl is not None else None,
        )
    assert row is not None
    return row


def revoke(
    store: Store, id: str, check: Callable[[AuthtokenRow], None] | None = None
) -> AuthtokenRow:
    """Revoke (idempotent: the first revocation time stays). The edge drops
    the token's agents when its snapshot moves past this revision."""
    if not tokens.is_id(id):
        raise UnknownAuthtoken(id)
    with store.write() as conn:
        if check is not None:
            current = authtoken_rows.get(conn, id)
            if current is None:
                raise UnknownAuthtoken(id)
            check(current)
        row = authtoken_rows.revoke(conn, id, datetime.now(UTC))
        if row is None:
            raise UnknownAuthtoken(id)  # rolls back: no revision bump
    return row


def list_all(store: Store) -> list[AuthtokenRow]:
    with store.read() as conn:
        return authtoken_rows.select(conn)


def limit(field: str, value: str, limit: int) -> None:
    """Check a free-text field (the API's other resources use the same rules)."""
    _limit(field, value, limit)


def _limit(field: str, value: str, limit: int) -> None:
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InputError(field, "not valid UTF-8") from None
    if size > limit:
        raise InputError(field, f"at most {limit} bytes of UTF-8, not {size}")
    if any(ord(c) < 32 and c not in "\t\n" for c in value):
        raise InputError(field, "control characters are not allowed")


__all__ = [
    "MAX_DESCRIPTION",
    "MAX_METADATA",
    "Created",
    "InputError",
    "UnknownAuthtoken",
    "create",
    "get",
    "limit",
    "list_all",
    "revoke",
    "update",
]
