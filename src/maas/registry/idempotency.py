"""When an upload is a retry of an earlier one, and which version that one made.

A client that loses the reply to an upload (a timeout, a dropped connection, a server
killed after its commit) cannot tell whether the version was made; retrying must not make
a second one. Two ways to be recognised, both scoped to the model:

- an ``Idempotency-Key`` (any 1..255 visible ASCII characters, a uuid4 from the SDK): the
  same key within ``KEY_WINDOW_S`` (24 h) gives back the version the first request made,
  archived or not; the same key for a different upload (other bytes, format, config or
  description) is a ``ConflictError`` naming the header. A new key is a new request,
  even for the same bytes.
- no key: the same bytes with the same options within ``SAME_BYTES_WINDOW_S`` (10 min)
  give back the newest version they made that is still in service. Uploading the same
  file again on purpose after that is a new version, as before.

Each upload's row (``upload_requests``, migration 0008) records its fingerprint: the
sha256 of the bytes as sent (before any conversion) with the format and options. The
rows live in the database, not in one process, so a retry that reaches another server
sharing the registry (or the same one restarted after ``kill -9``) is recognised too.
The check runs twice: before the upload is loaded (a retry costs a lookup), and again
inside the transaction that records the version, under the model's row lock (SQLite's
write lock), so two copies of one request racing make one version; the unique
(model, key) constraint is the last guard.

Why a table rather than the audit log: the lookup needs an index on (model, key) and on
(model, fingerprint), and the key must be unique; audit details are free JSON.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from maas.errors import ConflictError, InvalidInputError
from maas.registry.tables import ModelRow, ModelVersionRow, UploadRequestRow, utc_now

__all__ = [
    "KEY_HEADER",
    "KEY_WINDOW_S",
    "SAME_BYTES_WINDOW_S",
    "UploadRequest",
    "find_replay",
    "prune",
    "record",
]

KEY_HEADER: Final = "Idempotency-Key"
KEY_WINDOW_S: Final = 24 * 3600.0
SAME_BYTES_WINDOW_S: Final = 600.0
_KEY: Final = re.compile(r"[\x21-\x7e]{1,255}")


@dataclass(frozen=True, slots=True)
class UploadRequest:
    """What makes two uploads one request (see the module).

    >>> UploadRequest.of(sha256, artifact_format="onnx", key="7d0c...")  # doctest: +SKIP
    """

    fingerprint: str
    key: str | None = None
    same_bytes_window_s: float = SAME_BYTES_WINDOW_S

    @classmethod
    def of(
        cls,
        data_sha256: str,
        *,
        artifact_format: str,
        config: dict[str, Any] | None = None,
        description: str = "",
        key: str | None = None,
        same_bytes_window_s: float = SAME_BYTES_WINDOW_S,
    ) -> UploadRequest:
        """The request for bytes hashing to ``data_sha256`` sent with these options;
        ``key`` is checked (InvalidInputError naming the header)."""
        if key is not None and _KEY.fullmatch(key) is None:
            raise InvalidInputError(
                f"{KEY_HEADER} must be 1 to 255 visible ASCII characters (a uuid, say)",
                {"field": KEY_HEADER},
            )
        sent = {
            "sha256": data_sha256,
            "format": artifact_format,
            "config": config,
            "description": description,
        }
        canonical = json.dumps(sent, sort_keys=True, separators=(",", ":"), default=str)
        return cls(hashlib.sha256(canonical.encode()).hexdigest(), key, same_bytes_window_s)


def find_replay(
    session: Session, model: ModelRow, request: UploadRequest, *, now: datetime | None = None
) -> ModelVersionRow | None:
    """The version an earlier copy of ``request`` made, if this one is its retry."""
    now = now or utc_now()
    if request.key is not None:
        row = session.scalars(
            select(UploadRequestRow).where(
                UploadRequestRow.model_id == model.id,
                UploadRequestRow.idempotency_key == request.key,
                UploadRequestRow.created_at >= now - timedelta(seconds=KEY_WINDOW_S),
            )
        ).one_or_none()
        if row is None:
            return None
        if row.fingerprint != request.fingerprint:
            raise ConflictError(
                f"{KEY_HEADER} {request.key!r} was already used for another upload of model "
                f"{model.name!r} (other bytes or options); send a new key for a new upload",
                {"model": model.name, "field": KEY_HEADER},
            )
        return session.get(ModelVersionRow, row.version_id)
    if request.same_bytes_window_s <= 0:
        return None
    since = now - timedelta(seconds=request.same_bytes_window_s)
    candidates = session.scalars(
        select(ModelVersionRow)
        .join(UploadRequestRow, UploadRequestRow.version_id == ModelVersionRow.id)
        .where(
            UploadRequestRow.model_id == model.id,
            UploadRequestRow.fingerprint == request.fingerprint,
            UploadRequestRow.created_at >= since,
        )
        .order_by(ModelVersionRow.version.desc())
    )
    return next((row for row in candidates if row.archive is None), None)


def record(
    session: Session,
    version: ModelVersionRow,
    request: UploadRequest,
    *,
    now: datetime | None = None,
) -> None:
    """Remember that ``request`` made ``version`` (an expired row of its key goes first)."""
    now = now or utc_now()
    if request.key is not None:
        session.execute(
            delete(UploadRequestRow).where(
                UploadRequestRow.model_id == version.model_id,
                UploadRequestRow.idempotency_key == request.key,
            )
        )
    session.add(
        UploadRequestRow(
            model_id=version.model_id,
            version_id=version.id,
            idempotency_key=request.key,
            fingerprint=request.fingerprint,
            created_at=now,
        )
    )
    session.flush()


def prune(session: Session, *, now: datetime | None = None) -> int:
    """Forget requests older than the longest window; how many rows went."""
    cutoff = (now or utc_now()) - timedelta(seconds=max(KEY_WINDOW_S, SAME_BYTES_WINDOW_S))
    result = session.execute(delete(UploadRequestRow).where(UploadRequestRow.created_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
