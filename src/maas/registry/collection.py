"""Collecting what crashed or killed uploads leave behind: temporary files and orphans.

``Registry.collect_garbage`` runs this at server start and then periodically
(``serving.app``). What goes:

- temporary files (the upload folder ``<home>/tmp/uploads`` and the store's ``tmp``)
  whose writer is gone, or older than ``TEMP_MAX_AGE_S`` (1 h) whoever wrote them
  (``store.scratch``): a killed server's leftovers go at the next start, an upload in
  flight in another process sharing the folder is never touched;
- artifacts no version in service points at (the bytes of an upload killed between the
  store and the commit), once older than ``ORPHAN_GRACE_S`` (1 h): a registration in
  another process puts its bytes (refreshing a file already there) before it commits,
  and takes far less than that; each is checked again just before it goes, and a
  registration puts its bytes back if they vanished before its commit;
- upload requests older than the longest retry window (``registry.idempotency``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maas.registry import idempotency
from maas.registry import repository as repo
from maas.registry.tables import ModelVersionRow, VersionArchiveRow, VersionArtifactRow
from maas.registry.transactions import transaction
from maas.store import ArtifactStore
from maas.store.base import SweepableStore
from maas.store.scratch import Swept, sweep

__all__ = ["ORPHAN_GRACE_S", "TEMP_MAX_AGE_S", "UPLOAD_KIND", "Collected", "collect"]

log = logging.getLogger(__name__)

TEMP_MAX_AGE_S = 3600.0
ORPHAN_GRACE_S = 3600.0
#: The name kind of upload temporary files (``store.scratch.scratch_prefix``).
UPLOAD_KIND = "upload"


@dataclass(frozen=True, slots=True)
class Collected:
    """What one collection removed."""

    temp_files: int = 0
    temp_bytes: int = 0
    orphans: int = 0
    orphan_bytes: int = 0
    requests: int = 0

    @property
    def anything(self) -> bool:
        return bool(self.temp_files or self.orphans or self.requests)


def collect(
    sessions: sessionmaker[Session],
    writes: sessionmaker[Session],
    store: ArtifactStore,
    uploads_dir: Path | None,
    *,
    temp_max_age_s: float = TEMP_MAX_AGE_S,
    orphan_grace_s: float = ORPHAN_GRACE_S,
) -> Collected:
    """One pass (see the module); safe to run in several processes at once."""
    temp = Swept()
    if uploads_dir is not None:
        temp += sweep(uploads_dir, UPLOAD_KIND, temp_max_age_s)
    orphans = Swept()
    if isinstance(store, SweepableStore):
        temp += store.sweep_temp(temp_max_age_s)
        orphans = _collect_orphans(sessions, store, orphan_grace_s)
    with transaction(writes) as session:
        requests = idempotency.prune(session)
    collected = Collected(
        temp.entries, temp.size_bytes, orphans.entries, orphans.size_bytes, requests
    )
    if collected.anything:
        log.info(
            "collected %d temporary file(s) (%d bytes), %d orphaned artifact(s) (%d bytes), "
            "%d expired upload request(s)",
            collected.temp_files,
            collected.temp_bytes,
            collected.orphans,
            collected.orphan_bytes,
            collected.requests,
        )
    return collected


def _collect_orphans(
    sessions: sessionmaker[Session], store: SweepableStore, grace_s: float
) -> Swept:
    cutoff = time.time() - grace_s
    old = [artifact for artifact, modified in store.stored() if modified < cutoff]
    if not old:
        return Swept()
    with transaction(sessions) as session:
        used = _in_service(session)
    removed = Swept()
    for artifact in old:
        if artifact.sha256 in used:
            continue
        with transaction(sessions) as session:  # again, just before it goes
            if repo.sha256_in_use(session, artifact.sha256):
                continue
        store.delete(artifact.sha256)
        removed += Swept(1, artifact.size_bytes)
    return removed


def _in_service(session: Session) -> set[str]:
    in_service = ModelVersionRow.id.not_in(select(VersionArchiveRow.version_id))
    served = session.scalars(select(ModelVersionRow.artifact_sha256).where(in_service))
    extra = session.scalars(
        select(VersionArtifactRow.sha256)
        .join(ModelVersionRow, ModelVersionRow.id == VersionArtifactRow.version_id)
        .where(in_service)
    )
    return set(served) | set(extra)
