"""The store's tables, as SQLAlchemy Core metadata: what queries are written
against. The migrations in `migrations/versions/` create exactly this (a
test compares them); a change here needs a new migration.

One table per resource, named like the resource of the API that will serve
it (issue 14's `credentials` are our `authtokens`). `store_state` is one
row: the revision counter every write transaction bumps, which is how the
edge learns that its in-memory snapshot is stale.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Dialect,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    update,
)

NAMING = {  # stable constraint names, so later migrations can refer to them
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every database
    (SQLite keeps no zone: it stores the UTC wall time)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the store keeps aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


store_state = Table(
    "store_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("revision", BigInteger, nullable=False),
    # HMAC of a constant under the deployment secret: opening the store with
    # another secret file is refused (every token would silently fail).
    Column("secret_check", String(64), nullable=True),
    CheckConstraint("id = 1", name="single_row"),
)

authtokens = Table(
    "authtokens",
    metadata,
    Column("id", String(32), primary_key=True),  # "at_" + the token's id part
    Column("description", String(255), nullable=False),
    Column("token_hash", String(64), nullable=False),  # hex HMAC-SHA-256 (authtokens.tokens)
    Column("acl", JSON, nullable=False),  # list of canonical rule texts; [] = unrestricted
    Column("metadata", Text, nullable=False),  # free text, at most 4096 bytes (as ngrok's)
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("owner_id", String(32), nullable=True),  # the API key that created it; None: the CLI
)

# The admin API's keys (issue 14): only a keyed hash of each key is kept.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),  # "ak_" + the key's id part
    Column("description", String(255), nullable=False),
    Column("metadata", Text, nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("role", String(16), nullable=False),  # admin, developer, auditor
    Column("acl", JSON, nullable=False),  # developer: the bind rules it may grant; [] = none
    Column("owner_id", String(32), nullable=True),  # the API key that created it
    Column("created_at", UtcDateTime, nullable=False),
)

# Event destinations and subscriptions (issue 14): where events go, which.
event_destinations = Table(
    "event_destinations",
    metadata,
    Column("id", String(32), primary_key=True),  # "ed_" + random
    Column("description", String(255), nullable=False),
    Column("metadata", Text, nullable=False),
    Column("format", String(16), nullable=False),  # json, ocsf
    Column("target", JSON, nullable=False),  # {"syslog": {...}}: one kind (edgeward.events.spec)
    Column("created_at", UtcDateTime, nullable=False),
)

event_subscriptions = Table(
    "event_subscriptions",
    metadata,
    Column("id", String(32), primary_key=True),  # "esb_" + random
    Column("description", String(255), nullable=False),
    Column("metadata", Text, nullable=False),
    Column("sources", JSON, nullable=False),  # event types or globs
    Column("destination_ids", JSON, nullable=False),
    Column("filter", Text, nullable=False),  # a CEL expression; "" for none
    Column("created_at", UtcDateTime, nullable=False),
)

# The control plane's resources (issue 14, docs/control-plane.md): named
# like the public API's collections. What they mean is `edgeward.control`'s.
ip_policies = Table(
    "ip_policies",
    metadata,
    Column("id", String(32), primary_key=True),  # "ipp_..."
    Column("description", String(255), nullable=False),
    Column("metadata", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

ip_policy_rules = Table(
    "ip_policy_rules",
    metadata,
    Column("id", String(32), primary_key=True),  # "ipr_..."
    Column(
        "ip_policy_id", String(32), ForeignKey("ip_policies.id", ondelete="CASCADE"), nullable=False
    ),
    Column("cidr", String(64), nullable=False),
    Column("action", String(8), nullable=False),  # allow, deny
    Column("description", String(255), nullable=False),
    Column("metadata", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

ip_restrictions = Table(
    "ip_restrictions",
    metadata,
    Column("id", String(32), primary_key=True),  # "ipx_..."
    Column("type", String(16), nullable=False, unique=True),  # dashboard, api, agent, endpoints
    Column("enforced", Boolean, nullable=False),
    Column("ip_policy_ids", JSON, nullable=False),  # list of ids, at least one
    Column("description", String(255), nullable=False),
    Column("metadata", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# Endpoints made through the API (cloud-style): a URL and its traffic policy.
cloud_endpoints = Table(
    "cloud_endpoints",
    metadata,
    Column("id", String(32), primary_key=True),  # "ep_..."
    Column("url", String(255), nullable=False, unique=True),
    Column("traffic_policy", Text, nullable=False),
    Column("description", String(255), nullable=False),
    Column("metadata", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# The traffic inspector's opt-in, per endpoint (any kind: the id the API
# shows). The captures themselves stay in the edge's memory, never here.
endpoint_inspections = Table(
    "endpoint_inspections",
    metadata,
    Column("id", String(64), primary_key=True),  # the endpoint's id ("ep_...", "cfg_...")
    Column("enabled", Boolean, nullable=False),
    Column("max_requests", Integer, nullable=False),
    Column("max_body_bytes", Integer, nullable=False),
    Column("updated_by", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

vaults = Table(
    "vaults",
    metadata,
    Column("id", String(32), primary_key=True),  # "vault_..."
    Column("name", String(128), nullable=False, unique=True),
    Column("description", String(255), nullable=False),
    Column("metadata", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# A secret's value is sealed (AES-GCM under a key derived from the
# deployment secret, `store.secret.seal`): never kept in the clear.
secrets = Table(
    "secrets",
    metadata,
    Column("id", String(32), primary_key=True),  # "sec_..."
    Column("vault_id", String(32), ForeignKey("vaults.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("sealed_value", Text, nullable=False),
    Column("description", String(255), nullable=False),
    Column("metadata", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("vault_id", "name"),
)

# Issue 14's users (SSO principals) and the invitations that bind them.
users = Table(
    "users",
    metadata,
    Column("id", String(32), primary_key=True),  # "usr_" + 16 base32
    Column("email", String(320), nullable=False, unique=True),  # lower-case
    Column("role", String(16), nullable=False),  # admin, developer, auditor
    Column("acl", JSON, nullable=False),  # developer: the bind rules it may grant
    Column("sso_subject", String(512), nullable=True, unique=True),  # "oidc|iss|sub", "saml|..."
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_login_at", UtcDateTime, nullable=True),
)

invitations = Table(
    "invitations",
    metadata,
    Column("id", String(32), primary_key=True),  # "inv_" + 16 base32
    Column("user_id", String(32), nullable=False),
    Column("email", String(320), nullable=False),
    Column("token_hash", String(64), nullable=False),  # keyed hash of the link's token
    Column("created_by", String(64), nullable=True),  # the principal that invited
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
)

# Web sessions of the console/API (the cookie holds a random token; only its
# SHA-256 is the key here), login transactions and replay markers, and the
# break-glass local admins.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # hex SHA-256 of the cookie's token
    Column("principal_id", String(64), nullable=False),  # usr_... or bg_<name>
    Column("principal_type", String(16), nullable=False),  # user, break_glass
    Column("role", String(16), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("method", String(16), nullable=False),  # oidc, saml, break_glass
    Column("client_ip", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)

login_states = Table(
    "login_states",
    metadata,
    Column("key", String(160), primary_key=True),  # "oidc:<digest>", "saml-id:<id>", ...
    Column("data", JSON, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
)

break_glass = Table(
    "break_glass",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("password_hash", Text, nullable=False),  # scrypt, with its parameters
    Column("totp_secret", Text, nullable=False),  # sealed under the deployment secret
    Column("totp_last_step", BigInteger, nullable=False),  # a code is used once
    Column("created_at", UtcDateTime, nullable=False),
)


def update_described(
    conn: Connection,
    table: Table,
    id: str,
    *,
    description: str | None,
    metadata: str | None,
    acl: tuple[str, ...] | None,
) -> None:
    """Change the fields an authtoken and an API key share (None: keep)."""
    values: dict[str, object] = {}
    if description is not None:
        values["description"] = description
    if metadata is not None:
        values["metadata"] = metadata
    if acl is not None:
        values["acl"] = list(acl)
    if values:
        conn.execute(update(table).where(table.c.id == id).values(**values))


__all__ = [
    "UtcDateTime",
    "api_keys",
    "authtokens",
    "break_glass",
    "cloud_endpoints",
    "endpoint_inspections",
    "event_destinations",
    "event_subscriptions",
    "invitations",
    "ip_policies",
    "ip_policy_rules",
    "ip_restrictions",
    "login_states",
    "metadata",
    "secrets",
    "store_state",
    "update_described",
    "users",
    "vaults",
    "web_sessions",
]
