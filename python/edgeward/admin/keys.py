"""API keys of the admin API: their format, roles, and create / list /
update / delete in the state store (`edgeward.store.api_key_rows`).

    ewk_k3j5q2m7x4b6n8p2_Zm9vYmFyLi4uICAgIDMyIHJhbmRvbSBieXRlcyBiYXNlNjR1cmw

As authtokens (`edgeward.authtokens.tokens`): a recognisable prefix, an id
part (the key's id is `ak_` + it, so lookup needs no scan), 256 random bits;
only HMAC-SHA-256 of the whole key is stored, under a key of its own derived
from the deployment secret. Shown once, in the create response.

Roles: `admin` (everything), `developer` (mints authtokens within the ACL an
admin granted to its key, and sees and changes only its own), `auditor`
(reads everything, changes nothing).
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

from edgeward.authtokens.acl import Acl
from edgeward.authtokens.manage import MAX_DESCRIPTION, MAX_METADATA, InputError, limit
from edgeward.authtokens.tokens import Token, TokenHasher
from edgeward.errors import EdgewardError
from edgeward.store import ApiKeyRow, Store, api_key_rows

Role = Literal["admin", "developer", "auditor"]
ROLES: tuple[Role, ...] = get_args(Role)
KEY_PREFIX = "ewk_"
ID_PREFIX = "ak_"
_KEY = re.compile(rf"{KEY_PREFIX}(?P<id>[a-z2-7]{{16}})_(?P<secret>[A-Za-z0-9_-]{{43}})\Z")
_ID = re.compile(rf"{ID_PREFIX}[a-z2-7]{{16}}\Z")
PURPOSE = b"edgeward api key hash v1"


class UnknownApiKey(EdgewardError):
    def __init__(self, id: str) -> None:
        super().__init__(f"no API key {id!r}")
        self.id = id


@dataclass(frozen=True, slots=True)
class Created:
    key: Token  # key.text is shown once, then forgotten
    row: ApiKeyRow


def hasher(store: Store) -> TokenHasher:
    return TokenHasher(store.secret, PURPOSE)


def generate() -> Token:
    id_part = base64.b32encode(secrets.token_bytes(10)).decode().lower()
    return Token(ID_PREFIX + id_part, f"{KEY_PREFIX}{id_part}_{secrets.token_urlsafe(32)}")


def parse(text: str) -> Token | None:
    """The key `text` is by its format (not checked against the store)."""
    match = _KEY.match(text)
    return Token(ID_PREFIX + match["id"], text) if match is not None else None


def is_id(text: str) -> bool:
    return _ID.match(text) is not None


def check_role(role: str) -> Role:
    for known in ROLES:
        if role == known:
            return known
    raise InputError("role", f"must be one of {', '.join(ROLES)}, not {role!r}")


def create(
    store: Store,
    *,
    role: str,
    acl: Acl | None = None,
    description: str = "",
    metadata: str = "",
    owner_id: str | None = None,
) -> Created:
    """A new key. `acl`: for a developer, the bind rules it may give the
    authtokens it mints (None or empty: it may mint none)."""
    checked = check_role(role)
    limit("description", description, MAX_DESCRIPTION)
    limit("metadata", metadata, MAX_METADATA)
    if acl is not None and acl.rules and checked != "developer":
        raise InputError("acl", "only a developer's key carries an ACL grant")
    key = generate()
    row = ApiKeyRow(
        id=key.id,
        description=description,
        metadata=metadata,
        token_hash=hasher(store).digest(key),
        role=checked,
        acl=acl.texts if acl is not None else (),
        created_at=datetime.now(UTC),
        owner_id=owner_id,
    )
    with store.write() as conn:
        api_key_rows.insert(conn, row)
    return Created(key, row)


def authenticate(store: Store, presented: str) -> ApiKeyRow | None:
    """The key `presented` is, else None (malformed, unknown, deleted or
    wrong: the caller need not know which). Blocking: one read."""
    key = parse(presented)
    if key is None:
        return None
    with store.read() as conn:
        row = api_key_rows.get(conn, key.id)
    if row is None or not hasher(store).verify(key, row.token_hash):
        return None
    return row


def get(store: Store, id: str) -> ApiKeyRow:
    if not is_id(id):
        raise UnknownApiKey(id)
    with store.read() as conn:
        row = api_key_rows.get(conn, id)
    if row is None:
        raise UnknownApiKey(id)
    return row


def list_all(store: Store) -> list[ApiKeyRow]:
    with store.read() as conn:
        return api_key_rows.select(conn)


def update(
    store: Store,
    id: str,
    *,
    description: str | None = None,
    metadata: str | None = None,
    acl: Acl | None = None,
    check: Callable[[ApiKeyRow], None] | None = None,
) -> ApiKeyRow:
    """Change the given fields; `check(current)` runs first in the same
    transaction (If-Match)."""
    if description is not None:
        limit("description", description, MAX_DESCRIPTION)
    if metadata is not None:
        limit("metadata", metadata, MAX_METADATA)
    if not is_id(id):
        raise UnknownApiKey(id)
    with store.write() as conn:
        current = api_key_rows.get(conn, id)
        if current is None:
            raise UnknownApiKey(id)
        if check is not None:
            check(current)
        if acl is not None and acl.rules and current.role != "developer":
            raise InputError("acl", "only a developer's key carries an ACL grant")
        row = api_key_rows.update_fields(
            conn,
            id,
            description=description,
            metadata=metadata,
            acl=acl.texts if acl is not None else None,
        )
    assert row is not None
    return row


def delete(store: Store, id: str, check: Callable[[ApiKeyRow], None] | None = None) -> None:
    if not is_id(id):
        raise UnknownApiKey(id)
    with store.write() as conn:
        current = api_key_rows.get(conn, id)
        if current is None:
            raise UnknownApiKey(id)
        if check is not None:
            check(current)
        api_key_rows.remove(conn, id)


__all__ = [
    "ROLES",
    "Created",
    "Role",
    "UnknownApiKey",
    "authenticate",
    "check_role",
    "create",
    "delete",
    "get",
    "list_all",
    "update",
]
