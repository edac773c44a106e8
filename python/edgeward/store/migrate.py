"""Alembic, run programmatically: `upgrade head` at every open, inside the
caller's write transaction (so two processes opening a new store at once
queue, and the second finds the schema done). No alembic.ini: the script
location is this package's `migrations/`.

For developers, `python -m edgeward.store.migrate revision -m "what"
--autogenerate --url sqlite:////tmp/x.db` writes a new migration from the
difference between `schema.py` and a store at head; `sql --url URL` prints
the SQL of the whole history (for a DBA).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from sqlalchemy import Connection

SCRIPT_LOCATION = "edgeward.store:migrations"


def config(connection: Connection | None = None, url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url)
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    revision = ScriptDirectory.from_config(config()).get_current_head()
    assert revision is not None
    return revision


def known(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(config()).get_revision(revision) is not None
    except RevisionError:
        return False


def current(connection: Connection) -> str | None:
    """The revision the database is at (None: no schema yet)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection) -> None:
    command.upgrade(config(connection), "head")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgeward.store.migrate")
    sub = parser.add_subparsers(dest="command", required=True)
    new = sub.add_parser("revision", help="write a new migration file")
    new.add_argument("-m", "--message", required=True)
    new.add_argument("--autogenerate", action="store_true")
    new.add_argument("--url", required=True, help="a store at head to compare schema.py with")
    sql = sub.add_parser("sql", help="print the SQL of every migration")
    sql.add_argument("--url", required=True, help="only the dialect matters")
    args = parser.parse_args(argv)
    cfg = config(url=args.url)
    if args.command == "revision":
        number = f"{int(head()) + 1:04d}"
        command.revision(cfg, message=args.message, autogenerate=args.autogenerate, rev_id=number)
    else:
        command.upgrade(cfg, "head", sql=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
