"""Queries over the registry tables and the conversion of rows into entities.

Every function takes an open ``Session`` and neither commits nor validates names: the
transaction and the rules belong to ``service.Registry``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from maas.errors import NotFoundError
from maas.protocol.signature import Signature
from maas.registry.entities import (
    Alias,
    Archive,
    AuditEvent,
    ConfigRevision,
    Model,
    ModelVersion,
)
from maas.registry.tables import (
    AliasRow,
    AuditEventRow,
    ModelRow,
    ModelVersionRow,
    TrafficPolicyRow,
    VersionArchiveRow,
    VersionArtifactRow,
    VersionConfigRow,
    utc_now,
)

__all__ = [
    "add_config",
    "add_event",
    "add_version",
    "archived_numbers",
    "config_revisions",
    "find_alias",
    "find_model",
    "find_traffic_policy",
    "find_version",
    "newest_version",
    "next_version_number",
    "require_model",
    "require_version",
    "sha256_in_use",
    "to_alias",
    "to_config",
    "to_event",
    "to_model",
    "to_version",
]


def find_model(session: Session, name: str, *, lock: bool = False) -> ModelRow | None:
    """The model row, locked against concurrent writers when ``lock`` (PostgreSQL)."""
    query = select(ModelRow).where(ModelRow.name == name)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def require_model(session: Session, name: str, *, lock: bool = False) -> ModelRow:
    row = find_model(session, name, lock=lock)
    if row is None:
        raise NotFoundError(f"model {name!r} not found", {"model": name})
    return row


def next_version_number(session: Session, model: ModelRow) -> int:
    current = session.scalar(
        select(func.max(ModelVersionRow.version)).where(ModelVersionRow.model_id == model.id)
    )
    return (current or 0) + 1


def find_version(session: Session, model: ModelRow, version: int) -> ModelVersionRow | None:
    return session.scalars(
        select(ModelVersionRow).where(
            ModelVersionRow.model_id == model.id, ModelVersionRow.version == version
        )
    ).one_or_none()


def require_version(session: Session, model: ModelRow, version: int) -> ModelVersionRow:
    row = find_version(session, model, version)
    if row is None:
        raise NotFoundError(
            f"version {version} of model {model.name!r} not found",
            {"model": model.name, "version": version},
        )
    return row


def _in_service() -> Any:
    """The condition "this version is not archived"."""
    return (
        ~select(VersionArchiveRow.id)
        .where(VersionArchiveRow.version_id == ModelVersionRow.id)
        .exists()
    )


def newest_version(session: Session, model: ModelRow) -> ModelVersionRow | None:
    """The model's newest version in service (archived ones are skipped)."""
    return session.scalars(
        select(ModelVersionRow)
        .where(ModelVersionRow.model_id == model.id, _in_service())
        .order_by(ModelVersionRow.version.desc())
        .limit(1)
    ).one_or_none()


def archived_numbers(session: Session, model: ModelRow) -> set[int]:
    return set(
        session.scalars(
            select(ModelVersionRow.version)
            .join(VersionArchiveRow, VersionArchiveRow.version_id == ModelVersionRow.id)
            .where(ModelVersionRow.model_id == model.id)
        )
    )


def find_traffic_policy(session: Session, model: ModelRow) -> TrafficPolicyRow | None:
    return session.scalars(
        select(TrafficPolicyRow).where(TrafficPolicyRow.model_id == model.id)
    ).one_or_none()


def find_alias(session: Session, model: ModelRow, name: str) -> AliasRow | None:
    return session.scalars(
        select(AliasRow).where(AliasRow.model_id == model.id, AliasRow.name == name)
    ).one_or_none()


def sha256_in_use(session: Session, sha256: str) -> bool:
    """Whether a version in service points at this artifact, served or extra (then it must
    stay); archived versions do not hold their artifacts."""
    found = session.scalar(
        select(ModelVersionRow.id)
        .where(ModelVersionRow.artifact_sha256 == sha256, _in_service())
        .limit(1)
    )
    if found is not None:
        return True
    extra = session.scalar(
        select(VersionArtifactRow.id)
        .join(ModelVersionRow, ModelVersionRow.id == VersionArtifactRow.version_id)
        .where(VersionArtifactRow.sha256 == sha256, _in_service())
        .limit(1)
    )
    return extra is not None


def add_event(
    session: Session,
    action: str,
    model_name: str,
    *,
    actor: str,
    version: int | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEventRow:
    """Append one audit event to the session's transaction (it commits with the change)."""
    row = AuditEventRow(
        at=utc_now(),
        action=action,
        model_name=model_name,
        version=version,
        actor=actor,
        details=details or {},
    )
    session.add(row)
    return row


def add_version(
    session: Session,
    model_name: str,
    row: ModelVersionRow,
    actor: str,
    description: str,
    extra_artifacts: Sequence[VersionArtifactRow] = (),
) -> ModelVersionRow:
    """Give ``row`` the model's next number and add it, its extra artifacts and audit events.

    The model row is created on the first version; otherwise it is locked
    (``SELECT ... FOR UPDATE``) so that concurrent writers on PostgreSQL number in turn.
    """
    model = find_model(session, model_name, lock=True)
    if model is None:
        model = ModelRow(name=model_name, description=description, created_at=utc_now())
        session.add(model)
        session.flush()
        add_event(session, "model.create", model_name, actor=actor)
    row.model = model
    row.version = next_version_number(session, model)
    session.add(row)
    details: dict[str, Any] = {
        "sha256": row.artifact_sha256,
        "format": row.artifact_format,
        "size_bytes": row.size_bytes,
    }
    if extra_artifacts:
        session.flush()  # the version's id, which the artifact rows point at
        for artifact in extra_artifacts:
            artifact.version_id = row.id
            session.add(artifact)
        details["extra_artifacts"] = {a.format: a.sha256 for a in extra_artifacts}
    add_event(
        session, "version.create", model_name, actor=actor, version=row.version, details=details
    )
    session.flush()
    return row


def to_model(row: ModelRow) -> Model:
    return Model(name=row.name, created_at=row.created_at, description=row.description)


def to_version(row: ModelVersionRow) -> ModelVersion:
    return ModelVersion(
        model_name=row.model.name,
        version=row.version,
        artifact_sha256=row.artifact_sha256,
        artifact_format=row.artifact_format,
        size_bytes=row.size_bytes,
        signature=Signature.from_dict(row.signature),
        created_at=row.created_at,
        metrics=dict(row.metrics),
        lineage=dict(row.lineage),
        artifacts={
            row.artifact_format: {"sha256": row.artifact_sha256, "size_bytes": row.size_bytes}
        }
        | {a.format: {"sha256": a.sha256, "size_bytes": a.size_bytes} for a in row.extra_artifacts},
        archived=None
        if row.archive is None
        else Archive(
            at=row.archive.archived_at, actor=row.archive.actor, reason=row.archive.reason
        ),
    )


def to_alias(row: AliasRow) -> Alias:
    return Alias(
        model_name=row.model.name,
        name=row.name,
        version=row.target.version,
        updated_at=row.updated_at,
    )


def to_event(row: AuditEventRow) -> AuditEvent:
    return AuditEvent(
        id=row.id,
        at=row.at,
        action=row.action,
        model_name=row.model_name,
        version=row.version,
        actor=row.actor,
        details=dict(row.details),
    )


def add_config(
    session: Session, version: ModelVersionRow, config: dict[str, Any], actor: str
) -> VersionConfigRow:
    """Append the version's next config revision with its audit event."""
    current = session.scalar(
        select(func.max(VersionConfigRow.revision)).where(VersionConfigRow.version_id == version.id)
    )
    row = VersionConfigRow(
        target=version,
        revision=(current or 0) + 1,
        config=config,
        actor=actor,
        created_at=utc_now(),
    )
    session.add(row)
    add_event(
        session,
        "config.set",
        version.model.name,
        actor=actor,
        version=version.version,
        details={"revision": row.revision},
    )
    session.flush()
    return row


def config_revisions(session: Session, version: ModelVersionRow) -> list[VersionConfigRow]:
    return list(
        session.scalars(
            select(VersionConfigRow)
            .where(VersionConfigRow.version_id == version.id)
            .order_by(VersionConfigRow.revision)
        )
    )


def to_config(row: VersionConfigRow) -> ConfigRevision:
    return ConfigRevision(
        model_name=row.target.model.name,
        version=row.target.version,
        revision=row.revision,
        config=dict(row.config),
        actor=row.actor,
        created_at=row.created_at,
    )
