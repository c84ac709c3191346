"""Serving config revisions per version.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 06:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "version_configs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_version_configs"),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name="fk_version_configs_version_id_model_versions",
        ),
        sa.UniqueConstraint(
            "version_id", "revision", name="uq_version_configs_version_id_revision"
        ),
    )
    op.create_index("ix_version_configs_version_id", "version_configs", ["version_id"])


def downgrade() -> None:
    op.drop_index("ix_version_configs_version_id", table_name="version_configs")
    op.drop_table("version_configs")
