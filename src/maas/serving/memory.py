"""Giving an unloaded version's memory back to the system (glibc; elsewhere a no-op).

Two things keep freed memory resident under glibc. It keeps freed heap pages for reuse,
which ``malloc_trim(0)`` hands back after an unload. And it raises its mmap threshold
each time a large block is freed (from 128 KiB up to 32 MiB), after which a model's
weight and arena buffers come from the heap instead of mappings of their own, fragment
it, and stay resident: the server's RSS with the ResNet-sized CNN loaded wandered
between 1.07x and 1.19x of its first value over 20 unload/load cycles. With the
threshold fixed at glibc's own starting value it stayed at 1.00x, 16% lower
(``benchmarks/unload_memory.py``, docs/performance.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
from functools import cache
from typing import Final

__all__ = ["keep_large_blocks_mapped", "release_freed_memory"]

#: glibc's ``M_MMAP_THRESHOLD`` option and its default starting value.
_M_MMAP_THRESHOLD: Final = -3
_MMAP_THRESHOLD_BYTES: Final = 128 * 1024


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    glibc = hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt")
    return libc if glibc else None


def keep_large_blocks_mapped() -> bool:
    """Serve every block of 128 KiB or more from its own mapping, for the process's life,
    so that freeing it returns it at once. A threshold the user set (``MALLOC_MMAP_THRESHOLD_``
    or a ``GLIBC_TUNABLES`` entry) is kept. True when the threshold is now fixed."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "mmap_threshold" in os.environ.get(
        "GLIBC_TUNABLES", ""
    ):
        return False
    libc = _libc()
    return libc is not None and libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES) == 1


def release_freed_memory() -> None:
    """Collect garbage, then hand free heap pages back (where the C library can)."""
    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
