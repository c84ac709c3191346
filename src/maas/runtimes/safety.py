"""Refuse artifacts that would execute code when loaded, judged by content, never by name."""

from __future__ import annotations

from pathlib import Path

from maas.errors import InvalidArtifactError

__all__ = ["refuse_executable_formats"]

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
