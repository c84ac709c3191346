"""Register a user-supplied artifact only after it has loaded in its runtime.

Loading is the validation: a file that is not a model of the claimed format (or is a
pickle) is refused before anything reaches the store or the registry. A ``skops`` upload
(scikit-learn) is converted to ONNX first and registered as an ``onnx`` version.

An upload held in memory (the HTTP body) is written to the registry's upload folder
(``<home>/tmp/uploads``, not the system's /tmp) for its runtime to load, under a name
that says which process wrote it (``store.scratch``): what a killed server leaves there
is collected at the next start (``Registry.collect_garbage``). A full disk there is
``InsufficientStorageError`` (507), the file removed. An upload may carry an
``UploadRequest`` (key, fingerprint): a retry gets the version its first copy made
(``registry.idempotency``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maas.control.model_config import parse_model_config
from maas.protocol.warmup import warmup_shapes
from maas.registry.collection import UPLOAD_KIND
from maas.registry.entities import ModelVersion
from maas.registry.idempotency import UploadRequest
from maas.registry.service import Registry
from maas.runtimes.base import LoadOptions
from maas.runtimes.discovery import load_runtime
from maas.runtimes.sklearn import convert_skops_to_onnx
from maas.store.scratch import out_of_space_as, scratch_prefix

__all__ = ["Uploaded", "register_upload", "register_upload_bytes", "upload_file"]

_UPLOAD_FOLDER = "upload folder"


@dataclass(frozen=True, slots=True)
class Uploaded:
    """An upload's outcome: the version, and whether an earlier copy of the same request
    made it (a retry: nothing new was stored; HTTP 200 rather than 201)."""

    version: ModelVersion
    replayed: bool = False


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
    request: UploadRequest | None = None,
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
            request=request,
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
        request=request,
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
    request: UploadRequest | None,
) -> ModelVersion:
    """Convert a skops file to ONNX (never unpickled) and register that as the version."""
    with _scratch_folder(registry) as folder:
        onnx_path = folder / "model.onnx"
        with out_of_space_as(_UPLOAD_FOLDER):
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
            request=request,
        )


def register_upload_bytes(
    registry: Registry, model_name: str, data: bytes, **kwargs: Any
) -> ModelVersion:
    """Same as ``register_upload`` for a body held in memory (the HTTP upload)."""
    with upload_file(registry, data) as path:
        return register_upload(registry, model_name, path, **kwargs)


@contextlib.contextmanager
def upload_file(registry: Registry, data: bytes) -> Iterator[Path]:
    """``data`` in a temporary file of the registry's upload folder, removed afterwards."""
    folder = registry.uploads_dir
    with out_of_space_as(_UPLOAD_FOLDER):
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=scratch_prefix(UPLOAD_KIND), dir=folder)
    path = Path(name)
    try:
        with out_of_space_as(_UPLOAD_FOLDER), os.fdopen(fd, "wb") as out:
            out.write(data)
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def _scratch_folder(registry: Registry) -> Iterator[Path]:
    folder = registry.uploads_dir
    with out_of_space_as(_UPLOAD_FOLDER):
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        scratch = tempfile.TemporaryDirectory(prefix=scratch_prefix(UPLOAD_KIND), dir=folder)
    with scratch as name:
        yield Path(name)
