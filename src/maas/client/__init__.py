"""The Python SDK of maas: a server's management API, jobs and KServe V2 inference.

::

    import os
    from pathlib import Path

    import numpy as np
    from maas.client import Client

    with Client("http://127.0.0.1:8080", api_key=os.environ.get("MAAS_API_KEY")) as maas:
        version = maas.upload("iris", Path("iris.onnx"))
        maas.promote("iris", version.version)
        result = maas.infer("iris", {"input": np.zeros((1, 4), np.float32)})
        print(result.model_version, result["logits"])

``AsyncClient`` has the same methods as coroutines. Answers are frozen dataclasses
(``Model``, ``Version``, ``Job``...); failures raise the ``maas.errors`` tree, chosen by
the error body's ``code``: ``NotFoundError``, ``GateFailedError``, ``NotServableError``,
``InvalidInputError``, ``UnauthenticatedError`` (no key, or a wrong or revoked one, where
the server requires keys), ``ForbiddenError`` (the key may not do this)...,
``UnavailableError`` when the server cannot be reached, and ``RegistryMismatchError``
when it serves another registry than ``registry_id``.

The SDK speaks only the public API: it imports ``maas.protocol`` and ``maas.errors`` and
nothing of the server (an import-linter contract holds this).
"""

from __future__ import annotations

from ._async_client import AsyncClient
from ._client import Client
from ._types import (
    Alert,
    AlertRule,
    Alerts,
    Alias,
    AliasMove,
    ApiKey,
    Archive,
    Artifact,
    AuditEvent,
    CreatedKey,
    Deployment,
    DeploymentState,
    Drift,
    FeatureDrift,
    InferResult,
    InputReference,
    Job,
    JobLogLine,
    Model,
    RegistryInfo,
    RepositoryEntry,
    ServingConfig,
    Traffic,
    Version,
    VersionDrift,
)

__all__ = [
    "Alert",
    "AlertRule",
    "Alerts",
    "Alias",
    "AliasMove",
    "ApiKey",
    "Archive",
    "Artifact",
    "AsyncClient",
    "AuditEvent",
    "Client",
    "CreatedKey",
    "Deployment",
    "DeploymentState",
    "Drift",
    "FeatureDrift",
    "InferResult",
    "InputReference",
    "Job",
    "JobLogLine",
    "Model",
    "RegistryInfo",
    "RepositoryEntry",
    "ServingConfig",
    "Traffic",
    "Version",
    "VersionDrift",
]
