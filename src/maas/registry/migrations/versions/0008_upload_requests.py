"""Upload requests: what each upload sent (a fingerprint), its Idempotency-Key, and the
version it made, so that a retried upload gets that version back.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "upload_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_upload_requests"),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name="fk_upload_requests_model_id_models"
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name="fk_upload_requests_version_id_model_versions",
        ),
        sa.UniqueConstraint(
            "model_id", "idempotency_key", name="uq_upload_requests_model_id_idempotency_key"
        ),
    )
    op.create_index(
        "ix_upload_requests_model_id_fingerprint", "upload_requests", ["model_id", "fingerprint"]
    )


def downgrade() -> None:
    op.drop_table("upload_requests")
