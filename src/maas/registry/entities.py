"""Registry records as plain immutable values; the SQLAlchemy tables stay inside ``registry``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from maas.protocol.signature import Signature

__all__ = ["Alias", "AuditEvent", "ConfigRevision", "Job", "JobLogLine", "Model", "ModelVersion"]


@dataclass(frozen=True, slots=True)
class Model:
    name: str
    created_at: datetime
    description: str = ""


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One immutable, numbered version (1, 2, 3... per model) and the artifact it points at.

    ``artifact_*`` name the served artifact; ``artifacts`` maps every format the version
    holds (the served one and extras such as ``torchscript``) to its ``sha256`` and
    ``size_bytes``.
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
        }


@dataclass(frozen=True, slots=True)
class Alias:
    model_name: str
    name: str
    version: int
    updated_at: datetime


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


@dataclass(frozen=True, slots=True)
class ConfigRevision:
    """One revision of a version's serving config (batching, instances, signature overrides).

    The registry stores the document as given; ``maas.serving.model_config`` validates it.
    """

    model_name: str
    version: int
    revision: int
    config: dict[str, Any]
    actor: str
    created_at: datetime


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
        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

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
