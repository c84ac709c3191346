"""The one error tree of maas.

Every failure a user can cause or meet is a ``MaasError`` with a stable ``code``; each
transport maps codes to its own statuses in one table (``serving/rest/errors.py``,
``serving/grpc/errors.py``), and clients pick the class back from the body's ``code``
with ``error_class`` (never from the HTTP status)::

    MaasError                        code "internal"          (HTTP 500)
     +-- InvalidInputError           code "invalid_input"     (HTTP 400)
     |    +-- InvalidArtifactError   code "invalid_artifact"  (HTTP 400)
     |    +-- MethodNotAllowedError  code "method_not_allowed" (HTTP 405)
     |    +-- UnsupportedMediaTypeError code "unsupported_media_type" (HTTP 415)
     +-- UnauthenticatedError        code "unauthenticated"   (HTTP 401: no or a wrong API key)
     +-- ForbiddenError              code "forbidden"         (HTTP 403: key lacks the scope, or a
     |                                                         foreign Host / Origin)
     +-- RateLimitedError            code "rate_limited"      (HTTP 429 + Retry-After)
     +-- NotFoundError               code "not_found"         (HTTP 404)
     +-- ConflictError               code "conflict"          (HTTP 409)
     |    +-- GateFailedError        code "gate_failed"       (HTTP 409: the validation gate)
     |    +-- NotServableError       code "not_servable"      (HTTP 409: failed to load or warm)
     |    +-- RegistryMismatchError  code "registry_mismatch" (HTTP 409: another registry's server)
     +-- PayloadTooLargeError        code "payload_too_large" (HTTP 413)
     +-- InsufficientStorageError    code "insufficient_storage" (HTTP 507: a disk or quota is full)
     +-- IntegrityError              code "integrity"         (HTTP 500: stored bytes changed)
     +-- ModelError                  code "model_error"       (HTTP 500: the model itself failed)
     +-- UnavailableError            code "unavailable"       (HTTP 503)
     |    +-- QueueFullError         code "queue_full"        (HTTP 503 + Retry-After)
     |    +-- WorkerCrashedError     code "worker_crashed"    (HTTP 503)
     +-- DeadlineExceededError       code "deadline_exceeded" (HTTP 504: request timed out)
"""

from __future__ import annotations

import re
from typing import Any, Final

__all__ = [
    "CODES",
    "TRANSIENT_CODES",
    "ConflictError",
    "DeadlineExceededError",
    "ForbiddenError",
    "GateFailedError",
    "InsufficientStorageError",
    "IntegrityError",
    "InvalidArtifactError",
    "InvalidInputError",
    "MaasError",
    "MethodNotAllowedError",
    "ModelError",
    "NotFoundError",
    "NotServableError",
    "PayloadTooLargeError",
    "QueueFullError",
    "RateLimitedError",
    "RegistryMismatchError",
    "UnauthenticatedError",
    "UnavailableError",
    "UnsupportedMediaTypeError",
    "WorkerCrashedError",
    "describe",
    "error_class",
    "redact_paths",
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


class MethodNotAllowedError(InvalidInputError):
    """The path exists but does not take this HTTP method."""

    code = "method_not_allowed"


class UnsupportedMediaTypeError(InvalidInputError):
    """The body's Content-Type is not one this route reads (JSON, or the documented binary
    type): browsers' cross-site form types are refused before anything is read."""

    code = "unsupported_media_type"


class UnauthenticatedError(MaasError):
    """No API key, or one the server does not know (wrong, revoked, malformed)."""

    code = "unauthenticated"


class ForbiddenError(MaasError):
    """The caller is known but may not do this: the key lacks the scope or the model, or
    the request came from a host or origin this server does not serve."""

    code = "forbidden"


class RateLimitedError(MaasError):
    """The key (or model) is over its request rate; retry after ``details["retry_after_s"]``."""

    code = "rate_limited"


class NotFoundError(MaasError):
    """A model, version, alias or artifact that was named does not exist."""

    code = "not_found"


class ConflictError(MaasError):
    """The request contradicts the current state (for example a name already taken)."""

    code = "conflict"


class GateFailedError(ConflictError):
    """Moving ``production`` to this version is refused: ``details["failed"]`` lists why."""

    code = "gate_failed"


class NotServableError(ConflictError):
    """The version failed to load or to warm up, so no traffic may move to it;
    ``details["reason"]`` says why."""

    code = "not_servable"


class RegistryMismatchError(ConflictError):
    """The server serves another registry than the one the caller is configured for."""

    code = "registry_mismatch"


class PayloadTooLargeError(MaasError):
    """A request body is larger than the server accepts."""

    code = "payload_too_large"


class InsufficientStorageError(MaasError):
    """The server has no room to keep what was sent (a full disk or quota under the
    artifact store, the upload folder or the registry database); nothing was recorded.
    ``details["storage"]`` names which, never a path."""

    code = "insufficient_storage"


class IntegrityError(MaasError):
    """Stored bytes no longer match their recorded sha256."""

    code = "integrity"


class ModelError(MaasError):
    """The model failed on valid input: it raised, or its outputs contradict its signature."""

    code = "model_error"


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


def _tree(root: type[MaasError]) -> list[type[MaasError]]:
    found = [root]
    for sub in root.__subclasses__():
        found += _tree(sub)
    return found


# An absolute POSIX path: a "/" that starts a word (not "a/b", "http://h/x" or "1/2"),
# then path components up to a space, quote, bracket or separator.
_ABSOLUTE_PATH: Final = re.compile(r"(?<![\w.~:/\\-])(?:/[^\s/'\"`,;:()\[\]{}<>]+)+/?")

#: Every error code of the tree -> its class (the transports' tables must cover each one).
CODES: Final[dict[str, type[MaasError]]] = {cls.code: cls for cls in _tree(MaasError)}


#: The 5xx codes a busy or restarting server answers in normal operation (a client may
#: retry them): the transports log them at INFO, the other 5xx codes at ERROR.
TRANSIENT_CODES: Final[frozenset[str]] = frozenset(
    {
        UnavailableError.code,
        QueueFullError.code,
        WorkerCrashedError.code,
        DeadlineExceededError.code,
    }
)


def error_class(code: str) -> type[MaasError]:
    """The class for an error body's ``code``; ``MaasError`` for codes this version lacks.

    >>> error_class("not_found").__name__
    'NotFoundError'
    """
    return CODES.get(code, MaasError)


def redact_paths(text: str) -> str:
    """``text`` with every absolute path cut to its last part, so that a message from a
    library never shows users where the server keeps its files.

    >>> redact_paths("cannot open '/srv/maas/tmp/maas-upload-x1/artifact': denied")
    "cannot open 'artifact': denied"
    >>> redact_paths("see http://host:8000/v2/models and a/b/c")
    'see http://host:8000/v2/models and a/b/c'
    """
    return _ABSOLUTE_PATH.sub(lambda m: m.group().rstrip("/").rpartition("/")[2], text)


def describe(exc: BaseException) -> str:
    """An unexpected exception (a model's, say) in one line for users: the first line of
    its message with absolute paths cut to their last part (``redact_paths``); never its
    type or a traceback, which belong in the server's log.

    >>> describe(ValueError("bad shape in /opt/models/m.onnx\\nmore"))
    'bad shape in m.onnx'
    """
    lines = str(exc).strip().splitlines()
    first = redact_paths(lines[0][:300]).strip() if lines else ""
    return first or "no reason given"
