"""A real, small file system for tests of full disks: a tmpfs mounted on a folder.

Mounting needs root (or CAP_SYS_ADMIN); where it is not permitted, ``small_disk`` raises
``DiskUnavailableError`` with the reason, which a test turns into a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["DiskUnavailableError", "fill", "small_disk"]


class DiskUnavailableError(RuntimeError):
    """No small file system can be mounted here (not root, no mount, a sandbox)."""


@contextmanager
def small_disk(folder: Path, size_bytes: int) -> Iterator[Path]:
    """A tmpfs of ``size_bytes`` mounted on ``folder`` (made if missing), unmounted after."""
    mount, umount = shutil.which("mount"), shutil.which("umount")
    if mount is None or umount is None:
        raise DiskUnavailableError("no mount command here")
    if os.geteuid() != 0:
        raise DiskUnavailableError("mounting a tmpfs needs root")
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise DiskUnavailableError(f"mounting a tmpfs is not permitted: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run([umount, "-l", str(folder)], capture_output=True, check=False)


def fill(folder: Path, leave_bytes: int = 0) -> Path:
    """Write a file in ``folder`` until fewer than ``leave_bytes`` are free; its path."""
    filler = folder / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb") as out:
        try:
            while True:
                stat = os.statvfs(folder)
                free = stat.f_bavail * stat.f_frsize
                if free <= leave_bytes:
                    break
                out.write(chunk[: max(1, min(len(chunk), free - leave_bytes))])
                out.flush()
        except OSError:
            pass
    return filler
