"""Validation gate rules per model.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 07:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_gates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_gates"),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name="fk_model_gates_model_id_models"),
        sa.UniqueConstraint("model_id", name="uq_model_gates_model_id"),
    )


def downgrade() -> None:
    op.drop_table("model_gates")
