"""API keys in the registry: created, listed, revoked and audited here.

The registry keeps a key's public id, what it may do and a hash of its secret, never the
secret itself; hashing and checking secrets is the control plane's (``control.access``),
so this module only stores what it is given. Revoked keys keep their row: the audit log
names them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maas.errors import ConflictError, NotFoundError
from maas.registry import repository as repo
from maas.registry.entities import ApiKey
from maas.registry.tables import ApiKeyRow, utc_now
from maas.registry.transactions import transaction

__all__ = ["KeyBook"]


def _to_key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        key_id=row.key_id,
        name=row.name,
        scopes=tuple(row.scopes),
        models=None if row.models is None else tuple(row.models),
        secret_hash=row.secret_hash,
        rate_per_s=row.rate_per_s,
        created_at=row.created_at,
        created_by=row.created_by,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
    )


def _require(session: Session, key_id: str, *, lock: bool = False) -> ApiKeyRow:
    query = select(ApiKeyRow).where(ApiKeyRow.key_id == key_id)
    if lock:
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None:
        raise NotFoundError(f"API key {key_id[:16]!r} not found", {"key": key_id[:16]})
    return row


class KeyBook:
    """The registry's API keys.

    >>> registry.keys.add("0f3a9c2e71bd", "ci", ["read"], None, h, actor="a")  # doctest: +SKIP
    """

    def __init__(self, reads: sessionmaker[Session], writes: sessionmaker[Session]) -> None:
        self._reads = reads
        self._writes = writes

    def add(
        self,
        key_id: str,
        name: str,
        scopes: Sequence[str],
        models: Sequence[str] | None,
        secret_hash: str,
        *,
        rate_per_s: float | None = None,
        actor: str,
    ) -> ApiKey:
        """Record a new key (already validated) and its ``key.created`` audit event."""
        with transaction(self._writes) as session:
            row = ApiKeyRow(
                key_id=key_id,
                name=name,
                scopes=list(scopes),
                models=None if models is None else list(models),
                secret_hash=secret_hash,
                rate_per_s=rate_per_s,
                created_at=utc_now(),
                created_by=actor,
            )
            session.add(row)
            repo.add_event(
                session,
                "key.created",
                "",
                actor=actor,
                details={
                    "key": key_id,
                    "name": name,
                    "scopes": list(scopes),
                    "models": None if models is None else list(models),
                    "rate_per_s": rate_per_s,
                },
            )
            session.flush()
            return _to_key(row)

    def revoke(self, key_id: str, *, actor: str) -> ApiKey:
        """Revoke a key for good (ConflictError if it already is)."""
        with transaction(self._writes) as session:
            row = _require(session, key_id, lock=True)
            if row.revoked_at is not None:
                raise ConflictError(f"API key {key_id!r} was already revoked", {"key": key_id})
            row.revoked_at, row.revoked_by = utc_now(), actor
            repo.add_event(
                session, "key.revoked", "", actor=actor, details={"key": key_id, "name": row.name}
            )
            session.flush()
            return _to_key(row)

    def record_refusal(self, actor: str, details: dict[str, Any]) -> None:
        """An ``access.refused`` audit event: a management attempt without a fitting key."""
        with transaction(self._writes) as session:
            repo.add_event(session, "access.refused", "", actor=actor, details=details)

    def get(self, key_id: str) -> ApiKey:
        with transaction(self._reads) as session:
            return _to_key(_require(session, key_id))

    def list(self, *, include_revoked: bool = False) -> list[ApiKey]:
        """Keys in the order they were made."""
        query = select(ApiKeyRow).order_by(ApiKeyRow.id)
        if not include_revoked:
            query = query.where(ApiKeyRow.revoked_at.is_(None))
        with transaction(self._reads) as session:
            return [_to_key(row) for row in session.scalars(query)]
