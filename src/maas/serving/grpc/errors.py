"""One table from ``MaasError`` codes to gRPC status codes."""

from __future__ import annotations

import logging
from typing import Final

import grpc  # type: ignore[import-untyped]  # grpcio ships no type stubs

from maas.errors import MaasError

__all__ = ["STATUS_BY_CODE", "grpc_status"]

log = logging.getLogger(__name__)

STATUS_BY_CODE: Final[dict[str, grpc.StatusCode]] = {
    "invalid_input": grpc.StatusCode.INVALID_ARGUMENT,
    "invalid_artifact": grpc.StatusCode.INVALID_ARGUMENT,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "conflict": grpc.StatusCode.ALREADY_EXISTS,
    "gate_failed": grpc.StatusCode.FAILED_PRECONDITION,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
    "queue_full": grpc.StatusCode.UNAVAILABLE,
    "worker_crashed": grpc.StatusCode.UNAVAILABLE,
    "deadline_exceeded": grpc.StatusCode.DEADLINE_EXCEEDED,
    "payload_too_large": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "integrity": grpc.StatusCode.INTERNAL,
    "internal": grpc.StatusCode.INTERNAL,
}


def grpc_status(exc: Exception) -> tuple[grpc.StatusCode, str]:
    """The status and message answering ``exc``; unexpected errors are logged."""
    if isinstance(exc, MaasError):
        status = STATUS_BY_CODE.get(exc.code, grpc.StatusCode.INTERNAL)
        if status == grpc.StatusCode.INTERNAL:
            log.error("%s: %s", exc.code, exc.message)
        return status, exc.message
    log.exception("unexpected error", exc_info=exc)
    return grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}"
