"""The state store: a database (SQLite in the state directory by default,
any SQLAlchemy URL later), its schema brought to head at open, the
deployment secret, and transactions.

    store = Store.open(state_dir)
    with store.write() as conn:        # BEGIN IMMEDIATE ... COMMIT, revision + 1
        authtoken_rows.insert(conn, row)
    with store.read() as conn:         # one consistent view
        rows = authtoken_rows.select(conn)

Every write transaction bumps `store_state.revision` before it commits, so
a reader that saw revision N and now sees another number knows something
changed (`trio_adapter.AsyncStore.watch`). Blocking: callers under trio run
it in a thread (`trio_adapter`). Database errors surface as `StoreError`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from sqlalchemy import URL, Connection, Engine, make_url, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from edgeward.store import engine as engines
from edgeward.store import migrate, statedir
from edgeward.store import secret as secrets
from edgeward.store.errors import StoreError
from edgeward.store.schema import store_state

MIGRATION_LOCK = 0x6564676577617264  # "edgeward": PostgreSQL's advisory lock for migrations


class Store:
    __slots__ = ("engine", "secret", "where")

    def __init__(self, engine: Engine, secret: bytes) -> None:
        self.engine = engine
        self.secret = secret  # the deployment secret: derive keys from it, never store it
        self.where = engine.url.render_as_string(hide_password=True)

    @classmethod
    def open(cls, state_dir: Path | None = None, url: str | URL | None = None) -> Store:
        """Open (creating the directory, secret and database as needed) and
        migrate to head. `state_dir` defaults as `statedir.resolve` says; `url`
        to `sqlite:///<state_dir>/edgeward.db`."""
        state_dir = statedir.resolve(state_dir)
        try:
            state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise StoreError("not a directory", str(state_dir)) from None
        except OSError as exc:
            raise StoreError(
                f"cannot create the state directory: {exc.strerror}", str(state_dir)
            ) from None
        secret = secrets.load_or_create(state_dir / statedir.SECRET)
        target = (
            make_url(url) if url is not None else engines.sqlite_url(state_dir / statedir.DATABASE)
        )
        try:
            engine = engines.create(target)
        except (SQLAlchemyError, OSError, ImportError) as exc:  # ImportError: no DB driver
            raise StoreError(f"cannot open: {exc}", str(target)) from None
        store = cls(engine, secret)
        try:
            store._prepare()
        except BaseException:
            engine.dispose()
            raise
        return store

    def _prepare(self) -> None:
        with self._transaction(write=True) as conn:
            if conn.dialect.name == "postgresql":  # nodes starting together migrate one by one
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            at = migrate.current(conn)
            if at != migrate.HEAD:
                if at is not None and not migrate.known(at):
                    raise StoreError(
                        f"the schema is at revision {at}, newer than this edgeward knows"
                        f" ({migrate.HEAD}): upgrade edgeward",
                        self.where,
                    )
                migrate.upgrade(conn)
            expected = secrets.check_value(self.secret)
            stored = conn.scalar(select(store_state.c.secret_check))
            if stored is None:
                conn.execute(update(store_state).values(secret_check=expected))
            elif stored != expected:
                raise StoreError(
                    f"this database was made with another {statedir.SECRET}: restore the"
                    " secret file that belongs to it (no token would authenticate)",
                    self.where,
                )

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._transaction(write=False) as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self._transaction(write=True) as conn:
            yield conn
            conn.execute(update(store_state).values(revision=store_state.c.revision + 1))

    def revision(self) -> int:
        with self.read() as conn:
            return current_revision(conn)

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        try:
            with self.engine.connect() as raw:
                conn = raw.execution_options(**{engines.WRITE_OPTION: write})
                with conn.begin():
                    yield conn
        except SQLAlchemyError as exc:
            cause = getattr(exc, "orig", None) or exc
            raise StoreError(f"database error: {cause}", self.where) from exc

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def current_revision(conn: Connection) -> int:
    value = conn.scalar(select(store_state.c.revision))
    return int(value or 0)


def database_files(state_dir: Path) -> list[Path]:
    """The SQLite database and its WAL companions (for tests and backups)."""
    base = statedir.resolve(state_dir) / statedir.DATABASE
    return [p for p in (base, Path(f"{base}-wal"), Path(f"{base}-shm")) if os.path.exists(p)]


__all__ = ["Store", "current_revision", "database_files"]
