"""Register a user-supplied artifact only after it has loaded in its runtime.

Loading is the validation: a file that is not a model of the claimed format (or is a
pickle) is refused before anything reaches the store or the registry. A ``skops`` upload
(scikit-learn) is converted to ONNX first and registered as an ``onnx`` version.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from maas.control.model_config import parse_model_config
from maas.protocol.warmup import warmup_shapes
from maas.registry.entities import ModelVersion
from maas.registry.service import Registry
from maas.runtimes.base import LoadOptions
from maas.runtimes.discovery import load_runtime
from maas.runtimes.sklearn import convert_skops_to_onnx

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
    config: dict[str, Any] | None = None,
) -> ModelVersion:
    """Validate ``config`` and the artifact (by loading it), then register both together.

    The config's ``inputs``/``outputs``, when given, are the signature the runtime is
    loaded with (TorchScript files carry none) and the one recorded.
    """
    if artifact_format == "skops":
        return _register_skops(
            registry,
            model_name,
            path,
            actor=actor,
            lineage=lineage,
            description=description,
            config=config,
        )
    parsed = parse_model_config(config)
    override = parsed.signature_override()
    runtime = load_runtime(artifact_format, path, LoadOptions(signature=override))
    try:
        signature = override or runtime.signature
    finally:
        runtime.close()
    warmup_shapes(signature, parsed.warmup.shapes)  # the config's warm-up fits the model
    return registry.register_version(
        model_name,
        path,
        artifact_format=artifact_format,
        signature=signature,
        lineage={"source": "upload", **(lineage or {})},
        actor=actor,
        description=description,
        config=config,
    )


def _register_skops(
    registry: Registry,
    model_name: str,
    path: Path,
    *,
    actor: str,
    lineage: dict[str, Any] | None,
    description: str,
    config: dict[str, Any] | None,
) -> ModelVersion:
    """Convert a skops file to ONNX (never unpickled) and register that as the version."""
    with tempfile.TemporaryDirectory(prefix="maas-skops-") as folder:
        onnx_path = Path(folder) / "model.onnx"
        extras = convert_skops_to_onnx(path, onnx_path)
        return register_upload(
            registry,
            model_name,
            onnx_path,
            artifact_format="onnx",
            actor=actor,
            lineage={**(lineage or {}), **extras},
            description=description,
            config=config,
        )


def register_upload_bytes(
    registry: Registry, model_name: str, data: bytes, **kwargs: Any
) -> ModelVersion:
    """Same as ``register_upload`` for a body held in memory (the HTTP upload)."""
    with tempfile.TemporaryDirectory(prefix="maas-upload-") as folder:
        path = Path(folder) / "artifact"
        path.write_bytes(data)
        return register_upload(registry, model_name, path, **kwargs)
