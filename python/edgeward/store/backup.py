"""Backups of a SQLite state store, taken while the edge runs.

A backup is a directory holding what the state directory holds: a copy of
`edgeward.db` made with SQLite's online backup API (one consistent snapshot,
committed WAL pages included, while the edge and the CLI go on writing) and
the deployment secret `secret.key` that belongs to it (without it, no token
in the copy would authenticate). Restoring is copying both files into a
state directory while no edge uses it (docs/operations.md).

`verify` opens a backup read-only and checks what a restore relies on: the
database's integrity, a schema this edgeward can migrate, and the secret
matching the database. Other databases (PostgreSQL) are backed up with
their own tools.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from edgeward.store import migrate, statedir
from edgeward.store import secret as secrets
from edgeward.store.errors import StoreError
from edgeward.store.store import Store

_PARTIAL = ".edgeward.db.partial"


@dataclass(frozen=True, slots=True)
class BackupSummary:
    """What `verify` found in a backup directory."""

    directory: Path
    schema: str  # the Alembic revision of the schema
    revision: int  # the store's change counter when the copy was taken
    rows: dict[str, int]  # rows per table, for a human to compare


def backup(store: Store, destination: Path) -> BackupSummary:
    """Copy `store` into the directory `destination` (made, mode 0700; it must
    not hold a database yet), then `verify` the copy."""
    if store.engine.url.get_backend_name() != "sqlite":
        raise StoreError(
            "edgeward backs up SQLite stores only: use the database's own tools (pg_dump)",
            store.where,
        )
    target = destination / statedir.DATABASE
    try:
        destination.mkdir(mode=0o700, parents=True, exist_ok=True)
        if target.exists():
            raise StoreError("a backup is already there: choose an empty directory", str(target))
        partial = destination / _PARTIAL
        partial.unlink(missing_ok=True)
        os.close(os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
        _copy(store, partial)
        _write_secret(destination / statedir.SECRET, store.secret)
        os.rename(partial, target)  # a database appears whole or not at all
        _fsync_directory(destination)
    except OSError as exc:
        raise StoreError(f"cannot write the backup: {exc.strerror}", str(destination)) from None
    return verify(destination)


def verify(directory: Path) -> BackupSummary:
    """Check a backup (or a stopped state directory) without changing it."""
    database, secret_file = directory / statedir.DATABASE, directory / statedir.SECRET
    if not database.is_file():
        raise StoreError("no database here", str(database))
    if not secret_file.is_file():
        raise StoreError("no secret.key beside the database: a backup needs both", str(directory))
    secret = secrets.read(secret_file)
    try:
        conn = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open: {exc}", str(database)) from None
    try:
        return _check(conn, directory, database, secret)
    except sqlite3.Error as exc:
        raise StoreError(f"not a readable edgeward store: {exc}", str(database)) from None
    finally:
        conn.close()


def _check(
    conn: sqlite3.Connection, directory: Path, database: Path, secret: bytes
) -> BackupSummary:
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        raise StoreError(f"damaged: {'; '.join(problems[:3])}", str(database))
    schema = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    if schema is None or not migrate.known(schema[0]):
        found = schema[0] if schema else "none"
        raise StoreError(f"schema revision {found} is not one this edgeward knows", str(database))
    revision, check = conn.execute("SELECT revision, secret_check FROM store_state").fetchone()
    if check is not None and check != secrets.check_value(secret):
        raise StoreError(
            "secret.key does not belong to this database (no token would authenticate)",
            str(directory),
        )
    tables = [
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " AND name NOT IN ('alembic_version', 'store_state') ORDER BY name"
        )
    ]
    rows = {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in tables}
    return BackupSummary(directory, schema[0], int(revision or 0), rows)


def _copy(store: Store, path: Path) -> None:
    raw = store.engine.raw_connection()
    try:
        source = raw.driver_connection
        assert isinstance(source, sqlite3.Connection)
        copy = sqlite3.connect(path)
        try:
            source.backup(copy)  # pages in steps; a write meanwhile restarts the step loop
            copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        finally:
            copy.close()
        with open(path, "rb") as file:
            os.fsync(file.fileno())
    except sqlite3.Error as exc:
        raise StoreError(f"backup failed: {exc}", store.where) from None
    finally:
        raw.close()


def _write_secret(path: Path, secret: bytes) -> None:
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(secret.hex() + "\n")
        file.flush()
        os.fsync(file.fileno())


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["BackupSummary", "backup", "verify"]
