"""Read request bodies with a size limit, so a huge upload is refused before it is buffered."""

from __future__ import annotations

from starlette.requests import Request

from maas.errors import PayloadTooLargeError

__all__ = ["read_body"]


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
