"""Registry records as plain immutable values; the SQLAlchemy tables stay inside ``registry``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from maas.protocol.signature import Signature

__all__ = ["Alias", "AuditEvent", "ConfigRevision", "Model", "ModelVersion"]


@dataclass(frozen=True, slots=True)
class Model:
    name: str
    created_at: datetime
    description: str = ""


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One immutable, numbered version (1, 2, 3... per model) and the artifact it points at."""

    model_name: str
    version: int
    artifact_sha256: str
    artifact_format: str
    size_bytes: int
    signature: Signature
    created_at: datetime
    metrics: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "version": self.version,
            "artifact_sha256": self.artifact_sha256,
            "format": self.artifact_format,
            "size_bytes": self.size_bytes,
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
