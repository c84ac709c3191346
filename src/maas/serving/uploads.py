"""Register a user-supplied artifact only after it has loaded in its runtime.

Loading is the validation: a file that is not a model of the claimed format (or is a
pickle) is refused before anything reaches the store or the registry.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from maas.registry.entities import ModelVersion
from maas.registry.service import Registry
from maas.runtimes.discovery import load_runtime

__all__ = ["register_upload", "register_upload_bytes"]


def register_upload(
    registry: Registry,
    model_name: str,
    path: Path,
    *,
    artifact_format: str = "onnx",
    actor: str,
    lineage: dict[str, Any] | None = None,
    description: str = "",
) -> ModelVersion:
    runtime = load_runtime(artifact_format, path)
    try:
        signature = runtime.signature
    finally:
        runtime.close()
    return registry.register_version(
        model_name,
        path,
        artifact_format=artifact_format,
        signature=signature,
        lineage={"source": "upload", **(lineage or {})},
        actor=actor,
        description=description,
    )


def register_upload_bytes(
    registry: Registry, model_name: str, data: bytes, **kwargs: Any
) -> ModelVersion:
    """Same as ``register_upload`` for a body held in memory (the HTTP upload)."""
    with tempfile.TemporaryDirectory(prefix="maas-upload-") as folder:
        path = Path(folder) / "artifact"
        path.write_bytes(data)
        return register_upload(registry, model_name, path, **kwargs)
