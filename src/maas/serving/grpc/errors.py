"""One table from ``MaasError`` codes to gRPC status codes."""

from __future__ import annotations

import logging
from typing import Final

import grpc  # type: ignore[import-untyped]  # grpcio ships no type stubs

from maas import errors
from maas.errors import MaasError

__all__ = ["STATUS_BY_CODE", "grpc_status"]

log = logging.getLogger(__name__)

STATUS_BY_CODE: Final[dict[str, grpc.StatusCode]] = {
    errors.InvalidInputError.code: grpc.StatusCode.INVALID_ARGUMENT,
    errors.MethodNotAllowedError.code: grpc.StatusCode.UNIMPLEMENTED,
    errors.UnsupportedMediaTypeError.code: grpc.StatusCode.INVALID_ARGUMENT,
    errors.UnauthenticatedError.code: grpc.StatusCode.UNAUTHENTICATED,
    errors.ForbiddenError.code: grpc.StatusCode.PERMISSION_DENIED,
    errors.RateLimitedError.code: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.InvalidArtifactError.code: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFoundError.code: grpc.StatusCode.NOT_FOUND,
    errors.ConflictError.code: grpc.StatusCode.ALREADY_EXISTS,
    errors.GateFailedError.code: grpc.StatusCode.FAILED_PRECONDITION,
    errors.NotServableError.code: grpc.StatusCode.FAILED_PRECONDITION,
    errors.RegistryMismatchError.code: grpc.StatusCode.FAILED_PRECONDITION,
    errors.PayloadTooLargeError.code: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.InsufficientStorageError.code: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.UnavailableError.code: grpc.StatusCode.UNAVAILABLE,
    errors.QueueFullError.code: grpc.StatusCode.RESOURCE_EXHAUSTED,  # what Triton answers
    errors.WorkerCrashedError.code: grpc.StatusCode.UNAVAILABLE,
    errors.DeadlineExceededError.code: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.IntegrityError.code: grpc.StatusCode.INTERNAL,
    errors.ModelError.code: grpc.StatusCode.INTERNAL,
    errors.MaasError.code: grpc.StatusCode.INTERNAL,
}


def grpc_status(exc: Exception) -> tuple[grpc.StatusCode, str]:
    """The status and message answering ``exc``; unexpected errors are logged."""
    if isinstance(exc, MaasError):
        status = STATUS_BY_CODE.get(exc.code, grpc.StatusCode.INTERNAL)
        if exc.code in errors.TRANSIENT_CODES:  # expected under load: not ERROR
            log.info("%s: %s", exc.code, exc.message)
        elif status == grpc.StatusCode.INTERNAL:
            log.error("%s: %s", exc.code, exc.message)
        return status, exc.message
    log.exception("unexpected error", exc_info=exc)
    return grpc.StatusCode.INTERNAL, "internal error (the server's log says why)"
