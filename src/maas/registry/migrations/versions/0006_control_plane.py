"""The control plane's records: registry identity, archived versions, alias history,
traffic policies and per-model deployment state.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 14:00:00
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _model_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=f"fk_{table}_model_id_models")


def upgrade() -> None:
    info = op.create_table(
        "registry_info",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registry_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_registry_info"),
    )
    # The identity is made once, with the database: every process sharing it reports it.
    op.bulk_insert(
        info,
        [{"id": 1, "registry_id": str(uuid.uuid4()), "created_at": datetime.now(UTC)}],
    )
    op.create_table(
        "version_archives",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_version_archives"),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_versions.id"],
            name="fk_version_archives_version_id_model_versions",
        ),
        sa.UniqueConstraint("version_id", name="uq_version_archives_version_id"),
    )
    op.create_table(
        "alias_moves",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("previous", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alias_moves"),
        _model_fk("alias_moves"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_alias_moves_model_id", "alias_moves", ["model_id"])
    _backfill_alias_moves()
    op.create_table(
        "traffic_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("refs", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_traffic_policies"),
        _model_fk("traffic_policies"),
        sa.UniqueConstraint("model_id", name="uq_traffic_policies_model_id"),
    )
    op.create_table(
        "model_deployments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_deployments"),
        _model_fk("model_deployments"),
        sa.UniqueConstraint("model_id", name="uq_model_deployments_model_id"),
    )


def _backfill_alias_moves() -> None:
    """Earlier moves are in the audit log (``alias.set``/``alias.delete`` with from/to):
    replay them, so that ``rollback`` also works for aliases moved before this revision."""
    connection = op.get_bind()
    model_ids: dict[str, int] = dict(
        connection.execute(sa.text("SELECT name, id FROM models")).all()
    )
    events = connection.execute(
        sa.text(
            "SELECT model_name, action, actor, at, details FROM audit_events "
            "WHERE action IN ('alias.set', 'alias.delete') ORDER BY id"
        )
    )
    moves = []
    for model_name, action, actor, at, details in events:
        details = json.loads(details) if isinstance(details, str) else dict(details or {})
        model_id = model_ids.get(model_name)
        if model_id is None or not isinstance(details.get("alias"), str):
            continue
        moves.append(
            {
                "model_id": model_id,
                "alias": details["alias"],
                "kind": "set" if action == "alias.set" else "delete",
                "version": details.get("to") if action == "alias.set" else None,
                "previous": details.get("from"),
                "actor": actor,
                "at": at,
                "forced": bool(details.get("forced", False)),
                "reason": str(details.get("reason", "")),
            }
        )
    if moves:
        op.bulk_insert(sa.table("alias_moves", *(sa.column(k) for k in moves[0])), moves)


def downgrade() -> None:
    for table in (
        "model_deployments",
        "traffic_policies",
        "alias_moves",
        "version_archives",
        "registry_info",
    ):
        op.drop_table(table)
