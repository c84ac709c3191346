"""One table from error codes to HTTP statuses, and V2-shaped error bodies."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from maas import errors
from maas.errors import MaasError
from maas.protocol.json_codec import encode_json

__all__ = ["ErrorReply", "error_reply", "error_response", "install_error_handlers"]

log = logging.getLogger(__name__)

STATUS_BY_CODE: Final[dict[str, int]] = {
    errors.InvalidInputError.code: 400,
    errors.MethodNotAllowedError.code: 405,
    errors.UnsupportedMediaTypeError.code: 415,
    errors.UnauthenticatedError.code: 401,
    errors.ForbiddenError.code: 403,
    errors.RateLimitedError.code: 429,
    errors.InvalidArtifactError.code: 400,
    errors.NotFoundError.code: 404,
    errors.ConflictError.code: 409,
    errors.GateFailedError.code: 409,
    errors.NotServableError.code: 409,
    errors.RegistryMismatchError.code: 409,
    errors.PayloadTooLargeError.code: 413,
    errors.InsufficientStorageError.code: 507,
    errors.UnavailableError.code: 503,
    errors.QueueFullError.code: 503,
    errors.WorkerCrashedError.code: 503,
    errors.DeadlineExceededError.code: 504,
    errors.IntegrityError.code: 500,
    errors.ModelError.code: 500,
    errors.MaasError.code: 500,
}


def error_response(status: int, message: str, code: str, **details: object) -> Response:
    body: dict[str, object] = {"error": message, "code": code}
    if details:
        body["details"] = details
    return Response(encode_json(body), status_code=status, media_type="application/json")


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """What any REST path answers for a ``MaasError``: status, V2 body, extra headers."""

    status: int
    body: bytes
    headers: dict[str, str]


def error_reply(exc: MaasError) -> ErrorReply:
    status = STATUS_BY_CODE.get(exc.code, 500)
    if status >= 500:
        # A refusal under load is no fault of the server's: INFO; internal, model_error and
        # integrity are (ERROR). A burst of 271 queue_full lines at ERROR hid the real ones.
        level = logging.INFO if exc.code in errors.TRANSIENT_CODES else logging.ERROR
        log.log(level, "%s: %s", exc.code, exc.message)
    doc: dict[str, object] = {"error": exc.message, "code": exc.code}
    if exc.details:
        doc["details"] = exc.details
    headers = {}
    retry_after_s = exc.details.get("retry_after_s")
    if isinstance(retry_after_s, int | float):
        headers["Retry-After"] = str(max(1, math.ceil(retry_after_s)))
    return ErrorReply(status, encode_json(doc), headers)


async def _maas_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, MaasError)
    reply = error_reply(exc)
    return Response(
        reply.body, status_code=reply.status, media_type="application/json", headers=reply.headers
    )


def _field(location: object) -> str:
    """A validation error's location as a field path, without FastAPI's "body" prefix."""
    parts = [str(p) for p in location] if isinstance(location, list | tuple) else []
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    problems = "; ".join(f"{_field(e.get('loc', ()))}: {e.get('msg', '')}" for e in errors)
    field = _field(errors[0].get("loc", ())) if errors else "body"
    return error_response(400, f"invalid request: {problems}", "invalid_input", field=field)


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {
        404: errors.NotFoundError.code,
        405: errors.MethodNotAllowedError.code,
        413: errors.PayloadTooLargeError.code,
    }.get(exc.status_code)
    if code is None:  # the framework's other answers, mapped to the tree by their class
        code = errors.InvalidInputError.code if exc.status_code < 500 else errors.MaasError.code
    return error_response(exc.status_code, str(exc.detail), code)


async def _unexpected_error(_: Request, exc: Exception) -> Response:
    log.exception("unexpected error", exc_info=exc)
    return error_response(500, "internal error (the server's log says why)", "internal")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(MaasError, _maas_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
