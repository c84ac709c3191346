"""``LocalStore``: the default artifact store, a folder on the local disk.

Layout: ``root/sha256/ab/<64 hex>``. Writes are atomic (temporary file under the same
root, hashed while copied, fsync, ``os.replace``, fsync of the folder) so a crash never
leaves a file whose name lies about its content; finished files are read-only. The
temporary file lives in ``root/tmp`` because its final folder is known only once the
copy is hashed; it is the same file system, which is what makes the rename atomic.

A temporary file is named after its writer (``store.scratch``), so ``sweep_temp`` can
remove those a killed process left without touching one being written. A full disk or
quota is ``InsufficientStorageError`` (HTTP 507), the temporary file removed. Putting
content that is already there refreshes the file's time: a collector of orphaned
artifacts (``stored`` lists them with their times) leaves young files alone, so bytes a
registration is about to record are not collected under it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from maas.errors import IntegrityError, NotFoundError
from maas.store.base import StoredArtifact
from maas.store.digest import CHUNK_SIZE_BYTES, check_sha256, sha256_of_stream
from maas.store.scratch import Swept, out_of_space_as, scratch_prefix, sweep

__all__ = ["LocalStore"]

_READ_ONLY = 0o444
_TEMP_KIND = ".incoming"
_SHA256_NAME = re.compile(r"[0-9a-f]{64}")


class LocalStore:
    """Content-addressed store in a local folder.

    >>> store = LocalStore(Path("/tmp/artifacts"))  # doctest: +SKIP
    >>> store.read_bytes(store.put_bytes(b"onnx").sha256)  # doctest: +SKIP
    b'onnx'
    """

    def __init__(self, root: Path) -> None:
        self._root = Path(root)

    @property
    def root(self) -> Path:
        return self._root

    def put_file(self, source: Path) -> StoredArtifact:
        with open(source, "rb") as stream:
            return self._put_stream(stream)

    def put_bytes(self, data: bytes) -> StoredArtifact:
        return self._put_stream(io.BytesIO(data))

    def path(self, sha256: str) -> Path:
        target = self._location(sha256)
        try:
            with open(target, "rb") as stream:
                actual, _ = sha256_of_stream(stream)
        except FileNotFoundError:
            raise NotFoundError(f"artifact {sha256} not found in the store") from None
        if actual != sha256:
            raise IntegrityError(
                f"artifact {sha256} is corrupted: its bytes now hash to {actual}",
                {"sha256": sha256, "actual": actual},  # never the server's path
            )
        return target

    def read_bytes(self, sha256: str) -> bytes:
        target = self._location(sha256)
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"artifact {sha256} not found in the store") from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise IntegrityError(
                f"artifact {sha256} is corrupted: its bytes now hash to {actual}",
                {"sha256": sha256, "actual": actual},  # never the server's path
            )
        return data

    def stored(self) -> Iterator[tuple[StoredArtifact, float]]:
        """Every artifact held, with when it was last written or put again (epoch s)."""
        for folder in sorted(self._root.glob("sha256/??")):
            for path in sorted(folder.iterdir()):
                if _SHA256_NAME.fullmatch(path.name) is None:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    stat = path.stat()
                    yield StoredArtifact(path.name, stat.st_size), stat.st_mtime

    def sweep_temp(self, max_age_s: float) -> Swept:
        """Remove temporary files whose writer is gone, or older than ``max_age_s``."""
        return sweep(self._root / "tmp", _TEMP_KIND, max_age_s)

    def exists(self, sha256: str) -> bool:
        return self._location(sha256).is_file()

    def delete(self, sha256: str) -> None:
        target = self._location(sha256)
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
            _fsync_dir(target.parent)

    @staticmethod
    def _intact(target: Path, sha256: str) -> bool:
        """Whether an existing file still holds its content (a corrupted one gets replaced)."""
        with open(target, "rb") as stream:
            return sha256_of_stream(stream)[0] == sha256

    def _location(self, sha256: str) -> Path:
        check_sha256(sha256)
        return self._root / "sha256" / sha256[:2] / sha256

    def _put_stream(self, stream: BinaryIO) -> StoredArtifact:
        """Copy into a temp file while hashing, then move it under its digest."""
        with out_of_space_as("artifact store"):
            return self._put_temp(stream)

    def _put_temp(self, stream: BinaryIO) -> StoredArtifact:
        incoming = self._root / "tmp"
        incoming.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix=scratch_prefix(_TEMP_KIND), dir=incoming)
        temp = Path(temp_name)
        try:
            digest = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK_SIZE_BYTES):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha256 = digest.hexdigest()
            target = self._location(sha256)
            if target.is_file() and self._intact(target, sha256):
                temp.unlink()
                with contextlib.suppress(OSError):
                    os.utime(target)  # young again: a collector of orphans leaves it be
                return StoredArtifact(sha256, size)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(temp, _READ_ONLY)
            os.replace(temp, target)
            _fsync_dir(target.parent)
            return StoredArtifact(sha256, size)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            raise


def _fsync_dir(folder: Path) -> None:
    """Make a rename or unlink in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
