"""Identity at the edge: the login flow of the `oauth` and
`openid-connect` actions, sessions, and the auth host (docs/identity.md).

Sans-IO like the policy engine: the flow yields `edgeward.hooks` effects
(`Fetch` for the provider, `Await` for the Redis store) and returns
answers; the proxy performs the effects. The modules:

    seal.py       AES-256-GCM sealed cookies and tickets, the keys file (rotation)
    store.py      the session store interface; memory and SQLite stores
    redis_store.py  the Redis store (coredis), for several edges
    oidc.py       discovery, the provider's keys, ID-token validation (joserfc)
    providers.py  the oauth providers' endpoints, scopes and user APIs
    flow.py       the login flow and the session check (the state machine)
    runtime.py    the runtime built from the edge config; the auth host's hooks
"""

from __future__ import annotations

from edgeward.identity.flow import (
    Client,
    Code,
    Credentials,
    Outcome,
    Reply,
    Request,
    Runtime,
    Session,
    SessionOptions,
)
from edgeward.identity.runtime import AuthHostHooks, IdentitySettings, Runtimes

__all__ = [
    "AuthHostHooks",
    "Client",
    "Code",
    "Credentials",
    "IdentitySettings",
    "Outcome",
    "Reply",
    "Request",
    "Runtime",
    "Runtimes",
    "Session",
    "SessionOptions",
]
