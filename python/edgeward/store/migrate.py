"""Alembic, run programmatically: `upgrade head` at open, inside the
caller's write transaction (so two processes opening a new store at once
queue, and the second finds the schema done). No alembic.ini: the script
location is this package's `migrations/`.

A store already at `HEAD` (the usual case) is recognised with one query and
Alembic is not even imported: it costs a CLI command ~0.3 s of start-up.
`HEAD` must name the newest file in `migrations/versions/` (a test checks).

For developers, `python -m edgeward.store revision -m "what"
--autogenerate --url sqlite:////tmp/x.db` writes the next migration from the
difference between `schema.py` and a store at head; `sql --url URL` prints
the SQL of the whole history (for a DBA).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

HEAD = "0006"
SCRIPT_LOCATION = "edgeward.store:migrations"
VERSION_TABLE = "alembic_version"


def config(connection: Connection | None = None, url: str | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url)
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head() -> str | None:
    """The newest revision of the scripts, read by Alembic (HEAD's check)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config()).get_current_head()


def known(revision: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(config()).get_revision(revision) is not None
    except (RevisionError, CommandError):  # alembic wraps some as CommandError
        return False


def current(connection: Connection) -> str | None:
    """The revision the database is at (None: no schema yet)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    value = connection.scalar(text(f"SELECT version_num FROM {VERSION_TABLE}"))
    return str(value) if value is not None else None


def upgrade(connection: Connection) -> None:
    from alembic import command

    command.upgrade(config(connection), "head")


def main(argv: Sequence[str] | None = None) -> int:
    from alembic import command

    parser = argparse.ArgumentParser(prog="python -m edgeward.store")
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
        number = f"{int(HEAD) + 1:04d}"
        command.revision(cfg, message=args.message, autogenerate=args.autogenerate, rev_id=number)
        print(f"now set HEAD = {number!r} in {__file__}")
    else:
        command.upgrade(cfg, "head", sql=True)
    return 0
