"""Temporary files named after the process that writes them, and a full disk as an error.

A process killed in the middle of an upload (``kill -9``, a power cut) cannot remove its
temporary files, so each carries its writer in its name, ``<kind>-<pid>-<host>-<random>``
(``host``: 8 hex digits of a hash of the host name). A collector removes one when its
writer is gone (same host, no such process), or whatever it is once it is older than
``max_age_s``: a file of a live process is never touched before that, so an upload in
flight in another server sharing the folder is safe.

A write that finds the disk (or the quota) full raises ``InsufficientStorageError``
naming the storage, never the path (``out_of_space_as``).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from maas.errors import InsufficientStorageError

__all__ = ["Swept", "out_of_space_as", "process_alive", "scratch_prefix", "sweep"]

_FULL = {errno.ENOSPC, errno.EDQUOT}


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def scratch_prefix(kind: str) -> str:
    """The start of a temporary file's name for ``kind``, naming this process and host.

    >>> scratch_prefix("upload")  # doctest: +SKIP
    'upload-4242-3fa0c1d2-'
    """
    return f"{kind}-{os.getpid()}-{_host_tag()}-"


@dataclass(frozen=True, slots=True)
class Swept:
    """What one sweep removed: entries (files or folders) and their bytes."""

    entries: int = 0
    size_bytes: int = 0

    def __add__(self, other: Swept) -> Swept:
        return Swept(self.entries + other.entries, self.size_bytes + other.size_bytes)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: kill(0) is all we can know
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def sweep(folder: Path, kind: str, max_age_s: float, *, now: float | None = None) -> Swept:
    """Remove the ``kind`` entries of ``folder`` that are abandoned (see the module)."""
    pattern = re.compile(rf"{re.escape(kind)}-(\d+)-([0-9a-f]{{8}})-")
    now = time.time() if now is None else now
    host = _host_tag()
    removed = Swept()
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return removed
    for entry in entries:
        if not entry.name.startswith(f"{kind}-"):
            continue
        try:
            modified = entry.stat(follow_symlinks=False).st_mtime
        except FileNotFoundError:
            continue
        owner = pattern.match(entry.name)
        gone = owner is not None and owner[2] == host and not process_alive(int(owner[1]))
        if not gone and now - modified < max_age_s:
            continue
        removed += _remove(Path(entry.path))
    return removed


def _remove(path: Path) -> Swept:
    size = 0
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
            shutil.rmtree(path, ignore_errors=True)
        else:
            size = path.lstat().st_size
            path.unlink()
        return Swept(1, size)
    return Swept()


@contextlib.contextmanager
def out_of_space_as(storage: str) -> Iterator[None]:
    """Turn ENOSPC / EDQUOT inside the block into ``InsufficientStorageError`` naming
    ``storage`` (e.g. "artifact store"); other errors pass as they are."""
    try:
        yield
    except OSError as error:
        if error.errno not in _FULL:
            raise
        raise InsufficientStorageError(
            f"the {storage} has no space left (its disk or quota is full); nothing was recorded",
            {"storage": storage},
        ) from None
