"""A registered version and its artifact appear together or not at all."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from maas.errors import IntegrityError, InvalidInputError, NotFoundError
from maas.protocol.signature import Signature
from maas.registry import Registry, repository

ArtifactFactory = Callable[..., Path]


class InjectedFault(Exception):
    pass


@pytest.fixture
def failing_insert(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the version row be inserted (flushed), then fail before the commit."""
    real = repository.add_version

    def add_then_fail(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise InjectedFault("disk full")

    monkeypatch.setattr(repository, "add_version", add_then_fail)


def _stored_files(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "artifacts").rglob("*") if p.is_file()]


@pytest.mark.usefixtures("failing_insert")
def test_a_failed_insert_leaves_no_artifact_and_no_row(
    registry: Registry, signature: Signature, make_artifact: ArtifactFactory, tmp_path: Path
) -> None:
    with pytest.raises(InjectedFault):
        registry.register_version(
            "iris", make_artifact(), artifact_format="onnx", signature=signature
        )
    assert _stored_files(tmp_path) == []
    assert registry.list_models() == []
    assert registry.audit_log() == []
    assert registry.change_token() == (0, 0)


def test_a_failed_insert_keeps_an_artifact_another_version_uses(
    registry: Registry,
    signature: Signature,
    make_artifact: ArtifactFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = registry.register_version(
        "iris", make_artifact(b"shared"), artifact_format="onnx", signature=signature
    )
    real = repository.add_version

    def add_then_fail(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise InjectedFault("boom")

    monkeypatch.setattr(repository, "add_version", add_then_fail)
    with pytest.raises(InjectedFault):
        registry.register_version(
            "iris", make_artifact(b"shared"), artifact_format="onnx", signature=signature
        )
    assert registry.artifact_path(first).read_bytes() == b"shared"
    assert [v.version for v in registry.list_versions("iris")] == [1]


@pytest.mark.parametrize(
    ("metrics", "lineage"),
    [({"when": object()}, None), ({"auc": float("nan")}, None), (None, {"parent": {1, 2}})],
)
def test_unserialisable_metadata_is_refused_before_storing(
    registry: Registry,
    signature: Signature,
    make_artifact: ArtifactFactory,
    tmp_path: Path,
    metrics: Any,
    lineage: Any,
) -> None:
    with pytest.raises(InvalidInputError, match="not JSON-serialisable"):
        registry.register_version(
            "iris",
            make_artifact(),
            artifact_format="onnx",
            signature=signature,
            metrics=metrics,
            lineage=lineage,
        )
    assert _stored_files(tmp_path) == []
    assert registry.list_models() == []


def test_a_missing_artifact_file_is_not_found(
    registry: Registry, signature: Signature, tmp_path: Path
) -> None:
    with pytest.raises(NotFoundError, match="artifact file"):
        registry.register_version(
            "iris", tmp_path / "missing.onnx", artifact_format="onnx", signature=signature
        )
    assert registry.list_models() == []


def test_corruption_is_detected_through_artifact_path(
    registry: Registry, signature: Signature, make_artifact: ArtifactFactory
) -> None:
    version = registry.register_version(
        "iris", make_artifact(b"weights"), artifact_format="onnx", signature=signature
    )
    assert version.artifact_sha256 == hashlib.sha256(b"weights").hexdigest()
    path = registry.artifact_path(version)
    path.chmod(0o644)
    path.write_bytes(b"tampered weights")
    with pytest.raises(IntegrityError, match="corrupted"):
        registry.artifact_path(version)


def test_a_deleted_artifact_is_not_found(
    registry: Registry, signature: Signature, make_artifact: ArtifactFactory
) -> None:
    version = registry.register_version(
        "iris", make_artifact(), artifact_format="onnx", signature=signature
    )
    registry.store.delete(version.artifact_sha256)
    with pytest.raises(NotFoundError):
        registry.artifact_path(version)
