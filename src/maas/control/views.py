"""Read models the control plane answers with, beyond the registry's own entities.

Each has ``to_dict``: the JSON document the API sends, which the SDK reads back, so that
the REST adapter, the CLI's local mode and the SDK all see one shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["EffectiveConfig", "ModelSummary"]


@dataclass(frozen=True, slots=True)
class ModelSummary:
    """A model with the numbers of its versions in service and its aliases."""

    name: str
    created_at: datetime
    description: str
    versions: tuple[int, ...]
    aliases: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "description": self.description,
            "versions": list(self.versions),
            "aliases": dict(self.aliases),
        }


@dataclass(frozen=True, slots=True)
class EffectiveConfig:
    """A version's serving config with every default filled in, and its revision
    (0 when the version never had a config of its own)."""

    model_name: str
    version: int
    revision: int
    config: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "version": self.version,
            "revision": self.revision,
            "config": self.config,
        }
