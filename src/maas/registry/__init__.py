"""The model registry: models, immutable versions, aliases, lineage and an audit log."""

from __future__ import annotations

from maas.registry.entities import Alias, AuditEvent, ConfigRevision, Model, ModelVersion
from maas.registry.service import Registry

__all__ = ["Alias", "AuditEvent", "ConfigRevision", "Model", "ModelVersion", "Registry"]
