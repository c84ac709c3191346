"""Extra artifacts per version (TorchScript beside the served ONNX).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 09:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "version_artifacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_version_artifacts"),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name="fk_version_artifacts_version_id_model_versions",
        ),
        sa.UniqueConstraint("version_id", "format", name="uq_version_artifacts_version_id_format"),
    )
    op.create_index("ix_version_artifacts_sha256", "version_artifacts", ["sha256"])


def downgrade() -> None:
    op.drop_table("version_artifacts")
