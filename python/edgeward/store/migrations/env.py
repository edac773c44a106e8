"""Alembic's entry point. The store runs it with an open connection
(`config.attributes["connection"]`, see migrate.py); the developer commands
of migrate.py give a URL instead, and offline mode (`sql`) prints SQL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from edgeward.store.engine import create
from edgeward.store.schema import metadata

config = context.config


def run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
elif (given := config.attributes.get("connection")) is not None:
    run(given)
else:
    with create(config.get_main_option("sqlalchemy.url") or "").begin() as connection:
        run(connection)
