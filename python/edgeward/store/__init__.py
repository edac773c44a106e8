"""The state store: what the edge must remember across restarts (today
authtokens; later users, API keys, IP policies ... of the control plane).

SQLAlchemy Core on SQLite in the state directory by default, any SQLAlchemy
URL in principle (PostgreSQL is the plan); the schema is brought to head by
Alembic at every open. One module per concern:

- `store`: `Store` (open, transactions, the revision counter);
- `schema`: the tables; `migrations/`: their history; `migrate`: Alembic;
- `engine`: URL -> engine (the SQLite settings);
- `statedir`, `secret`: the state directory and the deployment secret;
- `authtoken_rows`: the authtokens table's rows (their meaning lives in
  `edgeward.authtokens`);
- `api_key_rows`: the admin API's keys (their meaning lives in
  `edgeward.admin`);
- `event_rows`: event destinations and subscriptions (their meaning lives
  in `edgeward.events`);
- `user_rows`: users and invitations; `web_session_rows`: the console's
  web sessions, login states, break-glass admins (their meaning lives in
  `edgeward.admin`);
- `trio_adapter`: worker threads and the revision watcher for trio code.

Nothing here imports trio except `trio_adapter`, and nothing but this
package imports SQLAlchemy or Alembic (tests/test_architecture.py).
"""

from sqlalchemy import Connection  # the type of a transaction, for the layers above

from edgeward.store import (
    api_key_rows,
    authtoken_rows,
    control_rows,
    event_rows,
    statedir,
    user_rows,
    web_session_rows,
)
from edgeward.store.api_key_rows import ApiKeyRow
from edgeward.store.authtoken_rows import AuthtokenRow
from edgeward.store.errors import StoreError
from edgeward.store.store import Store, current_revision

__all__ = [
    "ApiKeyRow",
    "AuthtokenRow",
    "Connection",
    "Store",
    "StoreError",
    "api_key_rows",
    "authtoken_rows",
    "control_rows",
    "current_revision",
    "event_rows",
    "statedir",
    "user_rows",
    "web_session_rows",
]
