"""Refuse artifacts that would execute code when loaded, judged by content, never by name;
and archives (skops files, TorchScript zips) built to hurt whatever reads them.

``check_archive`` reads only a zip's central directory, before any loader opens a member:
too many members, more inflated bytes than a model plausibly holds, a compression ratio
only a bomb reaches, or names that would climb out of a folder (``..``, absolute paths)
or point elsewhere (symbolic links) are refused. Nothing is extracted today; the check
keeps it safe for whatever reads the archive, and bounds the memory a loader can be made
to inflate.
"""

from __future__ import annotations

import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final

from maas.errors import InvalidArtifactError, describe

__all__ = ["ArchiveLimits", "check_archive", "refuse_executable_formats"]


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """Bounds on a model archive; the defaults are far above any real model's."""

    max_members: int = 10_000
    max_inflated_bytes: int = 4 * 2**30
    #: inflated / compressed bytes of the whole archive, applied past ``ratio_floor_bytes``
    max_ratio: float = 100.0
    ratio_floor_bytes: int = 16 * 2**20


DEFAULT_LIMITS: Final = ArchiveLimits()


def check_archive(path: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> None:
    """Raise ``InvalidArtifactError`` unless the zip at ``path`` is within ``limits`` and
    every member is a plain file or folder with a relative name inside the archive."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InvalidArtifactError(f"the archive is not a readable zip ({describe(exc)})") from None
    if len(members) > limits.max_members:
        raise InvalidArtifactError(
            f"the archive holds {len(members)} members; at most {limits.max_members} are read",
            {"members": len(members)},
        )
    inflated = compressed = 0
    for member in members:
        _check_member_name(member)
        if stat.S_ISLNK(member.external_attr >> 16):
            raise InvalidArtifactError(
                f"the archive member {member.filename[:200]!r} is a symbolic link",
                {"member": member.filename[:200]},
            )
        inflated += member.file_size
        compressed += member.compress_size
    if inflated > limits.max_inflated_bytes:
        raise InvalidArtifactError(
            f"the archive inflates to {inflated} bytes; at most {limits.max_inflated_bytes}",
            {"inflated_bytes": inflated},
        )
    if inflated > limits.ratio_floor_bytes and inflated > limits.max_ratio * max(1, compressed):
        raise InvalidArtifactError(
            f"the archive inflates {inflated / max(1, compressed):.0f} times its compressed "
            f"size (at most {limits.max_ratio:.0f}): refused as a zip bomb",
            {"inflated_bytes": inflated, "compressed_bytes": compressed},
        )


def _check_member_name(member: zipfile.ZipInfo) -> None:
    name = member.filename
    # ZipInfo turns backslashes into slashes on Windows only: judge both separators.
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts:
        raise InvalidArtifactError(
            f"the archive member {name[:200]!r} has a name outside the archive "
            "(absolute, or with '..')",
            {"member": name[:200]},
        )


_ZIP_MAGIC = b"PK\x03\x04"  # torch.save / joblib archives hold pickles inside


def _looks_like_pickle(head: bytes) -> bool:
    # Protocols 2-5 start with PROTO (0x80) and the protocol number.
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def refuse_executable_formats(path: Path) -> None:
    """Raise ``InvalidArtifactError`` if ``path`` holds a pickle or a zip of pickles."""
    with path.open("rb") as file:
        head = file.read(8)
    if _looks_like_pickle(head):
        raise InvalidArtifactError(
            "the file is a Python pickle; maas never loads pickles. "
            "Export the model to ONNX (torch.onnx.export, skl2onnx) and upload that."
        )
    if head.startswith(_ZIP_MAGIC):
        raise InvalidArtifactError(
            "the file is a zip archive (torch.save or joblib, which hold pickles); "
            "export the model to ONNX and upload that."
        )
