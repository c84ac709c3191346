"""Input references: the statistics of a version's inputs that drift is measured against.

A version has at most one current reference; setting another replaces it (its revision
grows, so servers see the change) and both are audited (``reference.set``). The
document's owner, ``maas.control.references``, validates it before it gets here; the
registry stores it as JSON and reads nothing inside it. Training stores a version's first
reference in the transaction that registers the version (``add_in``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maas.registry import repository as repo
from maas.registry.entities import InputReference
from maas.registry.names import check_json_object
from maas.registry.tables import ModelRow, ModelVersionRow, VersionReferenceRow, utc_now
from maas.registry.transactions import transaction

__all__ = ["ReferenceBook", "add_in"]


def _to_reference(row: VersionReferenceRow, version: ModelVersionRow) -> InputReference:
    return InputReference(
        model_name=version.model.name,
        version=version.version,
        revision=row.revision,
        document=dict(row.document),
        actor=row.actor,
        updated_at=row.updated_at,
    )


def _find(session: Session, version: ModelVersionRow) -> VersionReferenceRow | None:
    return session.scalars(
        select(VersionReferenceRow).where(VersionReferenceRow.version_id == version.id)
    ).one_or_none()


def add_in(
    session: Session,
    version: ModelVersionRow,
    document: dict[str, Any],
    *,
    actor: str,
    details: dict[str, Any] | None = None,
) -> VersionReferenceRow:
    """Set (or replace) the version's reference inside the caller's transaction, with its
    ``reference.set`` audit event (``details``: what the control plane says of it)."""
    row = _find(session, version)
    replaced = None if row is None else row.revision
    now = utc_now()
    if row is None:
        row = VersionReferenceRow(
            version_id=version.id, revision=1, document=document, actor=actor, updated_at=now
        )
        session.add(row)
    else:
        row.revision += 1
        row.document, row.actor, row.updated_at = document, actor, now
    repo.add_event(
        session,
        "reference.set",
        version.model.name,
        actor=actor,
        version=version.version,
        details={**(details or {}), "revision": row.revision, "replaced": replaced},
    )
    session.flush()
    return row


class ReferenceBook:
    """The registry's input references, one current per version.

    >>> registry.references.put("digits", 3, document, actor="key:ci/0f3a")  # doctest: +SKIP
    """

    def __init__(self, reads: sessionmaker[Session], writes: sessionmaker[Session]) -> None:
        self._reads = reads
        self._writes = writes

    def put(
        self,
        name: str,
        version: int,
        document: dict[str, Any],
        *,
        actor: str,
        details: dict[str, Any] | None = None,
    ) -> InputReference:
        """Store ``document`` (already validated) as the version's reference; audited."""
        document = check_json_object("reference", document)
        with transaction(self._writes) as session:
            model = repo.require_model(session, name, lock=True)
            target = repo.require_version(session, model, int(version))
            row = add_in(session, target, document, actor=actor, details=details)
            return _to_reference(row, target)

    def get(self, name: str, version: int) -> InputReference | None:
        """The version's current reference, None when it has none."""
        with transaction(self._reads) as session:
            model = repo.require_model(session, name)
            target = repo.require_version(session, model, int(version))
            row = _find(session, target)
            return None if row is None else _to_reference(row, target)

    def revisions(self) -> dict[tuple[str, int], int]:
        """(model, version) -> revision of every reference: what a server compares to
        pick up new and replaced references, in one query without the documents."""
        query = (
            select(ModelRow.name, ModelVersionRow.version, VersionReferenceRow.revision)
            .join(ModelVersionRow, ModelVersionRow.id == VersionReferenceRow.version_id)
            .join(ModelRow, ModelRow.id == ModelVersionRow.model_id)
        )
        with transaction(self._reads) as session:
            return {(name, number): revision for name, number, revision in session.execute(query)}
