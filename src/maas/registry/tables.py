"""The registry's SQLAlchemy tables; nothing outside ``maas.registry`` sees these rows.

The schema itself is created by the Alembic migrations in ``migrations/``; these classes
must stay in step with them. Versions are immutable and audit events append-only: the
``before_update`` guards below turn an accidental ORM update into an error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, mapped_column, relationship

__all__ = [
    "NAMING_CONVENTION",
    "AliasMoveRow",
    "AliasRow",
    "ApiKeyRow",
    "AuditEventRow",
    "Base",
    "JobEpochRow",
    "JobLogRow",
    "JobRow",
    "ModelDeploymentRow",
    "ModelGateRow",
    "ModelRow",
    "ModelVersionRow",
    "RegistryInfoRow",
    "TrafficPolicyRow",
    "UTCDateTime",
    "UploadRequestRow",
    "VersionArchiveRow",
    "VersionArtifactRow",
    "VersionConfigRow",
    "VersionReferenceRow",
    "utc_now",
]


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, also on SQLite (which keeps no zone and returns naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: registry timestamps must be aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Constraint names are fixed by convention so batch migrations on SQLite can name them."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSON}


class ModelRow(Base):
    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    version: Mapped[int]
    artifact_sha256: Mapped[str] = mapped_column(String(64), index=True)
    artifact_format: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    signature: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]]
    lineage: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]

    model: Mapped[ModelRow] = relationship(lazy="joined", innerjoin=True)
    # Read-only: extra artifacts and the archive record are inserted by version_id, so a
    # version row never turns dirty.
    extra_artifacts: Mapped[list[VersionArtifactRow]] = relationship(
        viewonly=True, lazy="selectin", order_by="VersionArtifactRow.format"
    )
    archive: Mapped[VersionArchiveRow | None] = relationship(viewonly=True, lazy="selectin")


class VersionArchiveRow(Base):
    """A version taken out of service: no longer served or listed by default; its artifact
    is deleted once no other version uses it. The version row itself stays (history)."""

    __tablename__ = "version_archives"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), unique=True)
    archived_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")


class VersionArtifactRow(Base):
    """A version's artifact besides the served one (TorchScript beside ONNX); immutable."""

    __tablename__ = "version_artifacts"
    __table_args__ = (UniqueConstraint("version_id", "format"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    format: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)


class AliasRow(Base):
    __tablename__ = "aliases"
    __table_args__ = (UniqueConstraint("model_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    name: Mapped[str] = mapped_column(String(63))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    updated_at: Mapped[datetime]

    model: Mapped[ModelRow] = relationship(lazy="joined", innerjoin=True)
    target: Mapped[ModelVersionRow] = relationship(lazy="joined", innerjoin=True)


class AliasMoveRow(Base):
    """One move of an alias (set, rollback or delete), in order: the alias's history, which
    ``rollback`` walks back through."""

    __tablename__ = "alias_moves"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    alias: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(16))
    version: Mapped[int | None]
    previous: Mapped[int | None]
    actor: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime]
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text, default="")


class TrafficPolicyRow(Base):
    """A model's traffic policy (split, sticky header, shadow) as validated by
    ``maas.control.traffic``; ``refs`` lists the versions and aliases it names."""

    __tablename__ = "traffic_policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), unique=True)
    policy: Mapped[dict[str, Any]]
    refs: Mapped[list[Any]] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime]


class ModelDeploymentRow(Base):
    """Whether servers should serve a model (``loaded``) or not (``unloaded``); a model
    without a row is served."""

    __tablename__ = "model_deployments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), unique=True)
    state: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime]


class RegistryInfoRow(Base):
    """One row: the registry's identity, made with the database, so a client can tell
    whether a server serves the registry it is configured for."""

    __tablename__ = "registry_info"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    registry_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime]


class AuditEventRow(Base):
    __tablename__ = "audit_events"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(64))
    model_name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int | None]
    actor: Mapped[str] = mapped_column(String(128))
    details: Mapped[dict[str, Any]]


class VersionConfigRow(Base):
    """One revision of a version's serving config; a change adds a revision, never edits."""

    __tablename__ = "version_configs"
    __table_args__ = (UniqueConstraint("version_id", "revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    revision: Mapped[int]
    config: Mapped[dict[str, Any]]
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]

    target: Mapped[ModelVersionRow] = relationship(lazy="joined", innerjoin=True)


class ModelGateRow(Base):
    """A model's validation gate rules (see ``registry/gate.py``); one row per model."""

    __tablename__ = "model_gates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), unique=True)
    rules: Mapped[list[Any]] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime]


class JobRow(Base):
    """One training job and its live progress; the worker process updates it as it runs."""

    __tablename__ = "jobs"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    model_name: Mapped[str] = mapped_column(String(128))
    spec: Mapped[dict[str, Any]]
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    epochs: Mapped[int] = mapped_column(Integer, default=0)
    step: Mapped[int] = mapped_column(Integer, default=0)
    steps: Mapped[int] = mapped_column(Integer, default=0)
    eta_s: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]]
    error: Mapped[str] = mapped_column(Text, default="")
    result_version: Mapped[int | None]
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    checkpoint_epoch: Mapped[int] = mapped_column(Integer, default=0)
    worker_host: Mapped[str] = mapped_column(String(255), default="")
    worker_pid: Mapped[int | None]


class JobEpochRow(Base):
    """A job's metrics after one epoch: the history behind ``/api/jobs/{id}/metrics``."""

    __tablename__ = "job_epochs"
    __table_args__ = (UniqueConstraint("job_id", "epoch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    epoch: Mapped[int]
    metrics: Mapped[dict[str, Any]]
    at: Mapped[datetime]


class JobLogRow(Base):
    """One line of a job's log, in the order written (ids only grow)."""

    __tablename__ = "job_logs"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    at: Mapped[datetime]
    level: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)


def _refuse_version_update(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    raise RuntimeError(f"model versions are immutable (version id {target.id})")


def _refuse_artifact_update(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    raise RuntimeError(f"version artifacts are immutable (artifact id {target.id})")


def _refuse_audit_update(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    raise RuntimeError(f"audit events are append-only (event id {target.id})")


def _refuse_move_update(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    raise RuntimeError(f"alias moves are append-only (move id {target.id})")


def _refuse_config_update(mapper: Mapper[Any], connection: Any, target: Any) -> None:
    raise RuntimeError(f"config revisions are immutable (revision id {target.id})")


event.listen(ModelVersionRow, "before_update", _refuse_version_update)
event.listen(VersionArtifactRow, "before_update", _refuse_artifact_update)
event.listen(AuditEventRow, "before_update", _refuse_audit_update)
event.listen(VersionConfigRow, "before_update", _refuse_config_update)
event.listen(AliasMoveRow, "before_update", _refuse_move_update)


class ApiKeyRow(Base):
    """An API key: its public id, what it may do, and only a slow salted hash of its secret.
    Revoking sets ``revoked_at``; the row stays, so the audit log's actors stay readable."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(63))
    scopes: Mapped[list[Any]] = mapped_column(JSON)
    models: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    secret_hash: Mapped[str] = mapped_column(String(255))
    rate_per_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(128))
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(128), nullable=True)


class UploadRequestRow(Base):
    """An upload as its client sent it: the fingerprint of what was sent (bytes, format,
    options), its Idempotency-Key if any, and the version it made. A retry within the
    window (``registry.idempotency``) gets that version back instead of a new one; rows
    older than the longest window are pruned."""

    __tablename__ = "upload_requests"
    __table_args__ = (
        UniqueConstraint("model_id", "idempotency_key"),
        Index("ix_upload_requests_model_id_fingerprint", "model_id", "fingerprint"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class VersionReferenceRow(Base):
    """A version's input reference for drift (validated by ``maas.control.references``):
    at most one per version; replacing it bumps ``revision`` (servers compare it) and is
    audited."""

    __tablename__ = "version_references"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), unique=True)
    revision: Mapped[int]
    document: Mapped[dict[str, Any]]
    actor: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime]
