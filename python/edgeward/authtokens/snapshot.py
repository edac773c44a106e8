"""What the data plane reads: an immutable snapshot of the active
authtokens with their compiled ACLs. Built from the store in one read
transaction; never queried per request. The edge keeps one and swaps in a
new one when the store's revision moves (`AsyncStore.watch(load, ...)`).

    snapshot = load(store)
    authtoken = snapshot.authenticate(presented)   # Authtoken | None
    decision = authtoken.acl.allows(HostBind("alice.internal"))
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from edgeward.authtokens import tokens
from edgeward.authtokens.acl import Acl, AclError
from edgeward.store import AuthtokenRow, Store, authtoken_rows, current_revision


@dataclass(frozen=True, slots=True)
class Authtoken:
    """An active authtoken as the edge sees it (no hash, no secret)."""

    id: str
    description: str
    acl: Acl
    metadata: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Snapshot:
    revision: int  # the store revision it was read at
    hasher: tokens.TokenHasher = field(repr=False)
    _entries: Mapping[str, tuple[Authtoken, str]] = field(repr=False)  # id -> (token, hash)
    # Rows left out because their stored ACL no longer parses: id -> why.
    # Such a token authenticates nowhere (fail closed) and the edge logs this.
    problems: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def build(
        cls, revision: int, rows: Iterable[AuthtokenRow], hasher: tokens.TokenHasher
    ) -> Snapshot:
        entries: dict[str, tuple[Authtoken, str]] = {}
        problems: dict[str, str] = {}
        for row in rows:
            if row.revoked:
                continue
            try:
                acl = Acl.parse(row.acl, source=f"authtoken {row.id} acl")
            except AclError as exc:
                problems[row.id] = str(exc)
                continue
            token = Authtoken(row.id, row.description, acl, row.metadata, row.created_at)
            entries[row.id] = (token, row.token_hash)
        return cls(revision, hasher, MappingProxyType(entries), MappingProxyType(problems))

    def authenticate(self, presented: str) -> Authtoken | None:
        """The active authtoken `presented` is, else None (malformed, unknown,
        revoked, or a wrong secret: the caller need not know which). Lookup
        by the id part, then a constant-time comparison of the keyed hash."""
        try:
            token = tokens.parse(presented)
        except tokens.TokenError:
            return None
        entry = self._entries.get(token.id)
        if entry is None or not self.hasher.verify(token, entry[1]):
            return None
        return entry[0]

    def superseded(self, newer: Snapshot) -> frozenset[str]:
        """Ids of this snapshot's authtokens that `newer` revokes (or drops)
        or gives another ACL: the sessions to disconnect or re-check when
        the edge swaps `newer` in."""
        return frozenset(
            id
            for id, (token, _) in self._entries.items()
            if (other := newer.get(id)) is None or other.acl != token.acl
        )

    def get(self, id: str) -> Authtoken | None:
        entry = self._entries.get(id)
        return entry[0] if entry is not None else None

    def __contains__(self, id: object) -> bool:
        return id in self._entries

    def __iter__(self) -> Iterator[Authtoken]:
        return (entry[0] for entry in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)


def load(store: Store) -> Snapshot:
    """Read a snapshot (blocking: under trio, through `AsyncStore`)."""
    with store.read() as conn:
        revision = current_revision(conn)
        rows = authtoken_rows.select(conn, revoked=False)
    return Snapshot.build(revision, rows, tokens.TokenHasher(store.secret))


__all__ = ["Authtoken", "Snapshot", "load"]
