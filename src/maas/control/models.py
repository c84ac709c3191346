"""Models and versions: what is registered, uploads, archiving, serving configs, the gate.

Every rule about these lives here or below: a config is validated before it is recorded
(errors name the field), an upload is loaded before it is stored, a version is archived
only once nothing routes to it. The REST routes, the gRPC repository calls, the CLI and
the SDK call these methods and nothing else.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from maas.control.model_config import ModelConfig, parse_model_config
from maas.control.uploads import Uploaded, register_upload, register_upload_bytes
from maas.control.views import EffectiveConfig, ModelSummary
from maas.control.warmup import Warmup
from maas.errors import ForbiddenError, InvalidArtifactError, NotFoundError
from maas.protocol.warmup import warmup_shapes
from maas.registry.entities import AuditEvent, ModelVersion
from maas.registry.idempotency import UploadRequest
from maas.registry.service import Registry
from maas.runtimes.discovery import runtime_class

__all__ = ["Models"]


def _carries_code(artifact_format: str) -> bool:
    try:
        return runtime_class(artifact_format).carries_code
    except InvalidArtifactError:  # no such runtime (skops: converted): the upload says why
        return False


class Models:
    """>>> control.models.upload("iris", Path("iris.onnx"), actor="cli:ann")  # doctest: +SKIP"""

    def __init__(self, registry: Registry, warmup: Warmup) -> None:
        self._registry = registry
        self._warmup = warmup

    # -- reading ------------------------------------------------------------------------

    def list_models(self) -> list[ModelSummary]:
        return [self.get_model(m.name) for m in self._registry.list_models()]

    def get_model(self, name: str) -> ModelSummary:
        model = self._registry.get_model(name)
        return ModelSummary(
            name=model.name,
            created_at=model.created_at,
            description=model.description,
            versions=tuple(v.version for v in self._registry.list_versions(name)),
            aliases={a.name: a.version for a in self._registry.aliases.list_for(name)},
        )

    def list_versions(self, name: str, *, include_archived: bool = False) -> list[ModelVersion]:
        return self._registry.list_versions(name, include_archived=include_archived)

    def get_version(self, name: str, ref: str | int | None = None) -> ModelVersion:
        """The version a number or alias names (None: the default version)."""
        return self._registry.resolve(name, ref)

    def artifact(
        self, name: str, ref: str | int, artifact_format: str | None = None
    ) -> tuple[ModelVersion, Path]:
        """The version and a verified local path to its (or its ``artifact_format``) file."""
        version = self._registry.resolve(name, ref)
        return version, self._registry.artifact_path(version, artifact_format)

    def get_config(self, name: str, ref: str | int) -> EffectiveConfig:
        version = self._registry.resolve(name, ref)
        revision = self._registry.get_config(name, version.version)
        effective = parse_model_config(revision.config if revision else None)
        return EffectiveConfig(
            name, version.version, revision.revision if revision else 0, effective.model_dump()
        )

    def get_gate(self, name: str) -> list[dict[str, Any]]:
        return self._registry.get_gate(name)

    # -- changing -----------------------------------------------------------------------

    def upload(
        self,
        name: str,
        artifact: Path | bytes,
        *,
        actor: str,
        artifact_format: str = "onnx",
        description: str = "",
        config: dict[str, Any] | None = None,
        lineage: dict[str, Any] | None = None,
        may_carry_code: bool = False,
    ) -> ModelVersion:
        """Register a file (or the bytes of one) as the model's next version, once it has
        loaded in its runtime and its config is valid; nothing is stored otherwise.

        A format whose files are programs (TorchScript) is refused unless
        ``may_carry_code``: the CLI on the registry passes it; a server, when it allows
        such formats and the caller's key holds the ``code`` scope."""
        return self._upload(
            name,
            artifact,
            actor=actor,
            artifact_format=artifact_format,
            description=description,
            config=config,
            lineage=lineage,
            may_carry_code=may_carry_code,
            request=None,
        )

    def upload_retryable(
        self,
        name: str,
        data: bytes,
        *,
        idempotency_key: str | None,
        actor: str,
        artifact_format: str = "onnx",
        description: str = "",
        config: dict[str, Any] | None = None,
        may_carry_code: bool = False,
    ) -> Uploaded:
        """An upload over the API, whose client may retry it after losing the reply: the
        same ``idempotency_key`` within 24 h, or without a key the same bytes and options
        within 10 min, give back the version the first copy made (``replayed``), checked
        before anything is loaded; a key used for other bytes is a ConflictError
        (``registry.idempotency``)."""
        request = UploadRequest.of(
            hashlib.sha256(data).hexdigest(),
            artifact_format=artifact_format,
            config=config,
            description=description,
            key=idempotency_key,
        )
        self._check_code(artifact_format, may_carry_code)
        earlier = self._registry.find_upload(name, request)
        if earlier is not None:
            return Uploaded(earlier, replayed=True)
        version = self._upload(
            name,
            data,
            actor=actor,
            artifact_format=artifact_format,
            description=description,
            config=config,
            lineage=None,
            may_carry_code=may_carry_code,
            request=request,
        )
        return Uploaded(version)

    def _upload(
        self,
        name: str,
        artifact: Path | bytes,
        *,
        actor: str,
        artifact_format: str,
        description: str,
        config: dict[str, Any] | None,
        lineage: dict[str, Any] | None,
        may_carry_code: bool,
        request: UploadRequest | None,
    ) -> ModelVersion:
        self._check_code(artifact_format, may_carry_code)
        _check_config(config, None)
        options: dict[str, Any] = {
            "artifact_format": artifact_format,
            "actor": actor,
            "lineage": lineage,
            "description": description,
            "config": config,
            "request": request,
        }
        if isinstance(artifact, bytes):
            return register_upload_bytes(self._registry, name, artifact, **options)
        return register_upload(self._registry, name, artifact, **options)

    @staticmethod
    def _check_code(artifact_format: str, may_carry_code: bool) -> None:
        if _carries_code(artifact_format) and not may_carry_code:
            raise ForbiddenError(
                f"{artifact_format} files are programs, which this server does not take over "
                "its API: start it with MAAS_ALLOW_CODE_ARTIFACTS=true and upload with a key "
                "holding the code scope, or register the file on the server's machine with "
                "`maas --local models upload`",
                {"format": artifact_format},
            )

    def archive(self, name: str, ref: str | int, *, actor: str, reason: str = "") -> ModelVersion:
        """Take a version out of service (refused while an alias or the traffic policy
        names it); its artifacts are collected when nothing else uses them."""
        version = self._registry.resolve(name, ref)
        return self._registry.archive_version(name, version.version, actor=actor, reason=reason)

    def set_config(
        self, name: str, ref: str | int, document: dict[str, Any], *, actor: str
    ) -> EffectiveConfig:
        """Validate ``document`` (errors name the field) and record it as the version's
        next config revision; a running server applies it without dropping requests.

        The version must load and answer its warm-up request under the new config first
        (``NotServableError`` with the reason otherwise): a server rebuilds the version
        with it, and one starting afresh has no older config to fall back on.
        """
        version = self._registry.resolve(name, ref)
        config = _check_config(document, version)
        if version.archived is None:
            self._warmup.prepare(version, config)
        self._registry.set_config(name, version.version, document, actor=actor)
        return self.get_config(name, version.version)

    def set_gate(self, name: str, rules: Any, *, actor: str) -> list[dict[str, Any]]:
        """Replace the validation gate (``[]`` removes it); rules are checked, audited."""
        return self._registry.set_gate(name, rules, actor=actor)

    def record_evaluation(
        self, name: str, ref: str | int, details: dict[str, Any], *, actor: str
    ) -> AuditEvent:
        """Record that a version was measured (``maas evaluate``) in the audit log."""
        version = self._registry.resolve(name, ref)
        if version.archived is not None:
            raise NotFoundError(
                f"version {version.version} of {name!r} is archived",
                {"model": name, "version": version.version},
            )
        return self._registry.record_evaluation(name, version.version, details, actor=actor)


def _check_config(document: dict[str, Any] | None, version: ModelVersion | None) -> ModelConfig:
    """The config, validated on its own and, once the version is known, against its
    signature (warm-up shapes must fit it)."""
    config = parse_model_config(document)
    if version is not None:
        warmup_shapes(config.signature_override() or version.signature, config.warmup.shapes)
    return config
