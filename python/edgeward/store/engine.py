"""A SQLAlchemy engine for a store URL, with the settings the store relies
on.

PostgreSQL (several edge nodes on one store): `postgresql://` means psycopg
3, the maintained driver; connections are checked before use (a database
restart must not fail the next request). Writers serialise on the
`store_state` row each write transaction updates.

SQLite: WAL (the edge reads while the CLI writes), a busy timeout (a writer
waits for another instead of failing), `synchronous=FULL` (a revocation that
was reported done survives a power cut), foreign keys on. pysqlite's own
transaction handling is turned off and the engine emits BEGIN itself:
`BEGIN IMMEDIATE` for write transactions, so two writers queue on the lock
instead of one failing when it upgrades a read snapshot (SQLAlchemy's
documented recipe for pysqlite).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url

WRITE_OPTION = "edgeward_write"  # execution option: this transaction writes
BUSY_TIMEOUT_MS = 10_000


def sqlite_url(path: Path) -> URL:
    return URL.create("sqlite", database=str(path))


def create(url: str | URL) -> Engine:
    """An engine for `url`; for a SQLite file, the file is created first with
    mode 0600 (it holds token hashes) and the settings above are applied."""
    url = make_url(url)
    if url.get_backend_name() == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        return create_engine(url, pool_pre_ping=True, pool_size=4, max_overflow=4)
    if url.get_backend_name() != "sqlite":
        return create_engine(url)
    if url.database and url.database != ":memory:":
        path = Path(url.database)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    engine = create_engine(url)
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # the "begin" listener emits BEGIN
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = FULL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    write = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


__all__ = ["WRITE_OPTION", "create", "sqlite_url"]
