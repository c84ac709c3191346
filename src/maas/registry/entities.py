"""Registry records as plain immutable values; the SQLAlchemy tables stay inside ``registry``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from maas.protocol.signature import Signature

__all__ = [
    "Alias",
    "AliasMove",
    "ApiKey",
    "Archive",
    "AuditEvent",
    "ConfigRevision",
    "DeploymentState",
    "InputReference",
    "Job",
    "JobLogLine",
    "Model",
    "ModelVersion",
    "ServingSnapshot",
    "TrafficPolicy",
]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True, slots=True)
class Model:
    name: str
    created_at: datetime
    description: str = ""


@dataclass(frozen=True, slots=True)
class Archive:
    """When and why a version was taken out of service, and by whom."""

    at: datetime
    actor: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "actor": self.actor, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One immutable, numbered version (1, 2, 3... per model) and the artifact it points at.

    ``artifact_*`` name the served artifact; ``artifacts`` maps every format the version
    holds (the served one and extras such as ``torchscript``) to its ``sha256`` and
    ``size_bytes``. An ``archived`` version is no longer served; its artifacts may be gone.
    """

    model_name: str
    version: int
    artifact_sha256: str
    artifact_format: str
    size_bytes: int
    signature: Signature
    created_at: datetime
    metrics: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    archived: Archive | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "version": self.version,
            "artifact_sha256": self.artifact_sha256,
            "format": self.artifact_format,
            "size_bytes": self.size_bytes,
            "artifacts": self.artifacts,
            "signature": self.signature.to_dict(),
            "metrics": self.metrics,
            "lineage": self.lineage,
            "created_at": self.created_at.isoformat(),
            "archived": None if self.archived is None else self.archived.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class Alias:
    model_name: str
    name: str
    version: int
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "alias": self.name,
            "version": self.version,
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class AliasMove:
    """One entry of an alias's history: ``kind`` is set, rollback or delete (``version``
    None); ``previous`` is where it pointed before (None: nowhere)."""

    id: int
    model_name: str
    alias: str
    kind: str
    version: int | None
    previous: int | None
    actor: str
    at: datetime
    forced: bool = False
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model_name,
            "alias": self.alias,
            "kind": self.kind,
            "version": self.version,
            "previous": self.previous,
            "actor": self.actor,
            "at": self.at.isoformat(),
            "forced": self.forced,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class TrafficPolicy:
    """A model's stored traffic policy document (validated by ``maas.control.traffic``)."""

    model_name: str
    policy: dict[str, Any]
    actor: str
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "policy": self.policy,
            "actor": self.actor,
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class DeploymentState:
    """Whether servers should serve a model: ``loaded`` (the default) or ``unloaded``."""

    model_name: str
    state: str
    actor: str
    updated_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "state": self.state,
            "actor": self.actor,
            "updated_at": _iso(self.updated_at),
        }


@dataclass(frozen=True, slots=True)
class ServingSnapshot:
    """What a server needs to route one model, read in a few queries: the numbers of its
    versions in service (not archived), its aliases, traffic policy and deployment state."""

    model_name: str
    versions: tuple[int, ...]
    aliases: dict[str, int]
    policy: dict[str, Any] | None
    unloaded: bool
    #: version -> its newest config revision (versions without a config are absent)
    config_revisions: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One append-only record of a change: who did what to which model and version."""

    id: int
    at: datetime
    action: str
    model_name: str
    version: int | None
    actor: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "action": self.action,
            "model": self.model_name,
            "version": self.version,
            "actor": self.actor,
            "details": self.details,
        }


@dataclass(frozen=True, slots=True)
class ConfigRevision:
    """One revision of a version's serving config (batching, instances, signature overrides).

    The registry stores the document; ``maas.control.model_config`` validates it first.
    """

    model_name: str
    version: int
    revision: int
    config: dict[str, Any]
    actor: str
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "version": self.version,
            "revision": self.revision,
            "config": self.config,
            "actor": self.actor,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Job:
    """A training job as the API shows it: state, progress, latest metrics, result.

    ``epoch``/``step`` count finished epochs and steps within the current epoch;
    ``checkpoint_epoch`` is the last epoch a resume can start after (0: none yet).
    """

    id: int
    state: str
    model_name: str
    spec: dict[str, Any]
    actor: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    epoch: int
    epochs: int
    step: int
    steps: int
    eta_s: float | None
    metrics: dict[str, Any]
    error: str
    version: int | None
    cancel_requested: bool
    checkpoint_epoch: int
    worker: str

    def to_dict(self) -> dict[str, Any]:
        iso = _iso
        return {
            "id": self.id,
            "state": self.state,
            "model": self.model_name,
            "spec": self.spec,
            "actor": self.actor,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "attempts": self.attempts,
            "epoch": self.epoch,
            "epochs": self.epochs,
            "step": self.step,
            "steps": self.steps,
            "eta_s": self.eta_s,
            "metrics": self.metrics,
            "error": self.error,
            "version": self.version,
            "cancel_requested": self.cancel_requested,
            "checkpoint_epoch": self.checkpoint_epoch,
            "worker": self.worker,
        }


@dataclass(frozen=True, slots=True)
class JobLogLine:
    id: int
    at: datetime
    level: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "level": self.level,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as the registry keeps it: never its secret, only the secret's hash."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    models: tuple[str, ...] | None
    secret_hash: str = field(repr=False)
    rate_per_s: float | None
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The key for people and the API: everything but the hash."""
        return {
            "id": self.key_id,
            "name": self.name,
            "scopes": list(self.scopes),
            "models": None if self.models is None else list(self.models),
            "rate_per_s": self.rate_per_s,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "revoked_at": _iso(self.revoked_at),
            "revoked_by": self.revoked_by,
        }


@dataclass(frozen=True, slots=True)
class InputReference:
    """A version's input reference for drift: the document (``maas.monitoring.drift``'s
    ``Reference.to_dict``, validated by ``maas.control.references``) and who set it."""

    model_name: str
    version: int
    revision: int
    document: dict[str, Any]
    actor: str
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "version": self.version,
            "revision": self.revision,
            "actor": self.actor,
            "updated_at": self.updated_at.isoformat(),
            "reference": self.document,
        }
