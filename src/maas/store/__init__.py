"""Content-addressed artifact storage: bytes named by their sha256, verified on every read."""

from __future__ import annotations

from maas.store.base import ArtifactStore, StoredArtifact
from maas.store.local import LocalStore

__all__ = ["ArtifactStore", "LocalStore", "StoredArtifact"]
