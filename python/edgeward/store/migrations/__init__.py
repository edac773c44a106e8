"""Alembic migrations of the state store, run by `edgeward.store.migrate`
at every open. `versions/` is the schema's history: never edit a released
file; add one (see docs/agents.md, "The state store")."""
