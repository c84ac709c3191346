"""Giving freed memory back to the system after a version is unloaded.

glibc keeps freed heap pages for reuse, so without a trim the resident set of a server
that unloaded a large model stays where it was; ``malloc_trim(0)`` returns what it can.
Elsewhere (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable
from functools import cache

__all__ = ["release_freed_memory"]


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def release_freed_memory() -> None:
    """Collect garbage, then hand free heap pages back (where the C library can)."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
