"""The server keeps large blocks in mappings of their own, so unloading returns them.

Each case runs in a fresh interpreter: glibc's mmap threshold is process state, and the
dynamic one moves as soon as a large block is freed."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the mmap threshold is a glibc setting",
)

# Free a 4 MiB block (glibc's dynamic threshold would rise to 4 MiB), then allocate
# 1 MiB and print whether it got a mapping of its own (mallinfo2's mapped bytes grew).
_PROBE = textwrap.dedent(
    """
    import ctypes, sys
    from maas.serving.memory import keep_large_blocks_mapped

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
            "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    libc.mallinfo2.restype = MallInfo2
    fixed = keep_large_blocks_mapped() if sys.argv[1] == "fix" else False
    libc.free(libc.malloc(4 << 20))
    before = libc.mallinfo2().hblkhd
    block = libc.malloc(1 << 20)
    mapped = libc.mallinfo2().hblkhd - before >= 1 << 20
    libc.free(block)
    print(fixed, mapped)
    """
)


def _probe(mode: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    environment.pop("GLIBC_TUNABLES", None)
    environment.update(env)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, mode],
        capture_output=True,
        text=True,
        env=environment,
        check=True,
    )
    return done.stdout.strip()


def test_without_the_setting_glibc_moves_a_freed_large_block_to_the_heap() -> None:
    assert _probe("leave") == "False False"


def test_large_blocks_stay_mapped_after_a_larger_one_was_freed() -> None:
    assert _probe("fix") == "True True"


def test_a_threshold_the_user_set_is_kept() -> None:
    assert _probe("fix", MALLOC_MMAP_THRESHOLD_=str(8 << 20)) == "False False"
