"""sha256 digests: validating names and hashing streams in bounded memory."""

from __future__ import annotations

import hashlib
import re
from typing import BinaryIO

from maas.errors import InvalidInputError

__all__ = ["CHUNK_SIZE_BYTES", "check_sha256", "sha256_of_stream"]

CHUNK_SIZE_BYTES = 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")


def check_sha256(sha256: str) -> str:
    """Return ``sha256`` if it is 64 lowercase hex digits; anything else could escape the root."""
    if not isinstance(sha256, str) or _SHA256.fullmatch(sha256) is None:
        raise InvalidInputError(f"not a sha256 digest (64 lowercase hex digits): {sha256!r}")
    return sha256


def sha256_of_stream(stream: BinaryIO) -> tuple[str, int]:
    """Hash ``stream`` to its end in 1 MiB chunks; returns (hex digest, size in bytes)."""
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK_SIZE_BYTES):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size
