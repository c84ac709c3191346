"""The one error tree of maas.

Every failure a user can cause or meet is a ``MaasError`` with a stable ``code``;
each transport maps codes to its own statuses in one table (``serving/rest/errors.py``)::

    MaasError                      code "internal"
     +-- InvalidInputError         code "invalid_input"     (HTTP 400)
     |    +-- InvalidArtifactError code "invalid_artifact"  (HTTP 400)
     +-- NotFoundError             code "not_found"         (HTTP 404)
     +-- ConflictError             code "conflict"          (HTTP 409)
     +-- IntegrityError            code "integrity"         (HTTP 500: stored bytes changed)
     +-- UnavailableError          code "unavailable"       (HTTP 503)
     |    +-- QueueFullError       code "queue_full"        (HTTP 503 + Retry-After)
     |    +-- WorkerCrashedError   code "worker_crashed"    (HTTP 503)
     +-- DeadlineExceededError     code "deadline_exceeded" (HTTP 504: request timed out)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConflictError",
    "DeadlineExceededError",
    "IntegrityError",
    "InvalidArtifactError",
    "InvalidInputError",
    "MaasError",
    "NotFoundError",
    "QueueFullError",
    "UnavailableError",
    "WorkerCrashedError",
]


class MaasError(Exception):
    """Base of every error maas raises on purpose; ``message`` is shown to users as is."""

    code = "internal"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}


class InvalidInputError(MaasError):
    """The caller sent something malformed or inconsistent with what is expected."""

    code = "invalid_input"


class InvalidArtifactError(InvalidInputError):
    """An uploaded or produced model file is not a loadable model of the claimed format."""

    code = "invalid_artifact"


class NotFoundError(MaasError):
    """A model, version, alias or artifact that was named does not exist."""

    code = "not_found"


class ConflictError(MaasError):
    """The request contradicts the current state (for example a name already taken)."""

    code = "conflict"


class IntegrityError(MaasError):
    """Stored bytes no longer match their recorded sha256."""

    code = "integrity"


class UnavailableError(MaasError):
    """The server cannot take the request now (not ready, overloaded)."""

    code = "unavailable"


class QueueFullError(UnavailableError):
    """A version's request queue is at its bound; retry after ``details["retry_after_s"]``."""

    code = "queue_full"


class WorkerCrashedError(UnavailableError):
    """The worker process running the request died; the pool restarts it."""

    code = "worker_crashed"


class DeadlineExceededError(MaasError):
    """The request's timeout passed before it could run; it was not executed."""

    code = "deadline_exceeded"
