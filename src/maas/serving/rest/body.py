"""Read request bodies: with a size limit, so a huge upload is refused before it is
buffered; or as a JSON object that its owner in the control plane validates (the route
documents its schema with ``json_body``)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from maas.errors import InvalidInputError, PayloadTooLargeError

__all__ = ["json_body", "json_object", "read_body"]


async def read_body(request: Request, limit_bytes: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit_bytes:
        raise PayloadTooLargeError(f"request body of {declared} bytes exceeds {limit_bytes}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit_bytes:
            raise PayloadTooLargeError(f"request body exceeds {limit_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object; the fields are for the control plane to judge."""
    try:
        document = json.loads(await request.body())
    except ValueError as exc:
        raise InvalidInputError(f"the body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidInputError("the body must be a JSON object")
    return document


def json_body(schema: str) -> dict[str, Any]:
    """``openapi_extra`` saying the body is the JSON object of component ``schema``."""
    reference = {"$ref": f"#/components/schemas/{schema}"}
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": reference}}}
    }
