"""The ``ArtifactStore`` contract: bytes named by their sha256, verified on every read.

Stores are small on purpose so that a fake (or an object-store backend) is easy to write;
the registry only ever calls these six methods. A store that can also list what it
holds and sweep its own temporary files (``SweepableStore``, as ``LocalStore`` does) gets
its orphaned artifacts and a killed writer's leftovers collected by the registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from maas.store.scratch import Swept

__all__ = ["ArtifactStore", "StoredArtifact", "SweepableStore"]


@dataclass(frozen=True, slots=True)
class StoredArtifact:
    """What a put returns: the content's name (hex sha256) and its length."""

    sha256: str
    size_bytes: int


@runtime_checkable
class ArtifactStore(Protocol):
    """Content-addressed storage; every read checks the bytes still hash to their name.

    >>> store.put_bytes(b"abc").sha256[:8]  # doctest: +SKIP
    'ba7816bf'
    """

    def put_file(self, source: Path) -> StoredArtifact:
        """Copy ``source`` in; putting the same content twice is harmless."""
        ...

    def put_bytes(self, data: bytes) -> StoredArtifact:
        """Store ``data``; putting the same content twice is harmless."""
        ...

    def path(self, sha256: str) -> Path:
        """A local path to the verified bytes (NotFoundError, IntegrityError)."""
        ...

    def read_bytes(self, sha256: str) -> bytes:
        """The verified bytes (NotFoundError, IntegrityError)."""
        ...

    def exists(self, sha256: str) -> bool:
        """Whether the content is present (not verified: cheap)."""
        ...

    def delete(self, sha256: str) -> None:
        """Remove the content; no error if it is absent."""
        ...


@runtime_checkable
class SweepableStore(Protocol):
    """A store whose contents can be listed and whose temporary files can be swept."""

    def stored(self) -> Iterator[tuple[StoredArtifact, float]]:
        """Every artifact held, with when it was last written or put again (epoch s)."""
        ...

    def delete(self, sha256: str) -> None:
        """Remove the content; no error if it is absent."""
        ...

    def sweep_temp(self, max_age_s: float) -> Swept:
        """Remove temporary files a gone writer left, or older than ``max_age_s``."""
        ...
