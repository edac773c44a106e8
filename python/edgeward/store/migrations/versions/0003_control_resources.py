"""IP policies and rules, IP restrictions, endpoints made through the API,
vaults and their (sealed) secrets (issue 14).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def _described() -> list[sa.Column[object]]:
    return [
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "ip_policies",
        sa.Column("id", sa.String(length=32), nullable=False),
        *_described(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ip_policies")),
    )
    op.create_table(
        "ip_policy_rules",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("ip_policy_id", sa.String(length=32), nullable=False),
        sa.Column("cidr", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        *_described(),
        sa.ForeignKeyConstraint(
            ["ip_policy_id"],
            ["ip_policies.id"],
            name=op.f("fk_ip_policy_rules_ip_policy_id_ip_policies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ip_policy_rules")),
    )
    op.create_table(
        "ip_restrictions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("enforced", sa.Boolean(), nullable=False),
        sa.Column("ip_policy_ids", sa.JSON(), nullable=False),
        *_described(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ip_restrictions")),
        sa.UniqueConstraint("type", name=op.f("uq_ip_restrictions_type")),
    )
    op.create_table(
        "cloud_endpoints",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("url", sa.String(length=255), nullable=False),
        sa.Column("traffic_policy", sa.Text(), nullable=False),
        *_described(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cloud_endpoints")),
        sa.UniqueConstraint("url", name=op.f("uq_cloud_endpoints_url")),
    )
    op.create_table(
        "vaults",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        *_described(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vaults")),
        sa.UniqueConstraint("name", name=op.f("uq_vaults_name")),
    )
    op.create_table(
        "secrets",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("vault_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("sealed_value", sa.Text(), nullable=False),
        *_described(),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["vault_id"],
            ["vaults.id"],
            name=op.f("fk_secrets_vault_id_vaults"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_secrets")),
        sa.UniqueConstraint("vault_id", "name", name=op.f("uq_secrets_vault_id")),
    )


def downgrade() -> None:
    for table in (
        "secrets",
        "vaults",
        "cloud_endpoints",
        "ip_restrictions",
        "ip_policy_rules",
        "ip_policies",
    ):
        op.drop_table(table)
