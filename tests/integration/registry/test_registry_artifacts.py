"""Extra artifacts per version (TorchScript beside ONNX): stored, recorded and found together."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from maas.errors import InvalidInputError, NotFoundError
from maas.protocol.signature import Signature
from maas.registry import Registry, repository

ArtifactFactory = Callable[..., Path]


class InjectedFault(Exception):
    pass


def _stored_files(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "artifacts").rglob("*") if p.is_file()]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_extra_artifacts_are_stored_with_the_version(
    registry: Registry, signature: Signature, make_artifact: ArtifactFactory
) -> None:
    created = registry.register_version(
        "iris",
        make_artifact(b"onnx bytes"),
        artifact_format="onnx",
        signature=signature,
        extra_artifacts={"torchscript": make_artifact(b"torchscript bytes")},
    )
    assert created.artifact_format == "onnx"
    assert created.artifacts == {
        "onnx": {"sha256": _digest(b"onnx bytes"), "size_bytes": 10},
        "torchscript": {"sha256": _digest(b"torchscript bytes"), "size_bytes": 17},
    }
    assert registry.get_version("iris", 1) == created
    assert registry.resolve("iris") == created
    assert created.to_dict()["artifacts"] == created.artifacts
    assert registry.artifact_path(created).read_bytes() == b"onnx bytes"
    assert registry.artifact_path(created, "onnx").read_bytes() == b"onnx bytes"
    assert registry.artifact_path(created, "torchscript").read_bytes() == b"torchscript bytes"
    [event] = [e for e in registry.audit_log("iris") if e.action == "version.create"]
    assert event.details["extra_artifacts"] == {"torchscript": _digest(b"torchscript bytes")}


def test_a_version_without_extras_lists_only_its_served_artifact(
    registry: Registry, signature: Signature, make_artifact: ArtifactFactory
) -> None:
    version = registry.register_version(
        "iris", make_artifact(b"only"), artifact_format="onnx", signature=signature
    )
    assert version.artifacts == {"onnx": {"sha256": _digest(b"only"), "size_bytes": 4}}
    with pytest.raises(NotFoundError, match="no 'torchscript' artifact; it has: onnx") as missing:
        registry.artifact_path(version, "torchscript")
    assert missing.value.details["available"] == ["onnx"]


def test_versions_sharing_an_extra_artifact_each_list_it(
    registry: Registry, signature: Signature, make_artifact: ArtifactFactory
) -> None:
    for _ in range(2):
        registry.register_version(
            "iris",
            make_artifact(b"onnx"),
            artifact_format="onnx",
            signature=signature,
            extra_artifacts={"torchscript": make_artifact(b"ts")},
        )
    versions = registry.list_versions("iris")
    assert [v.artifacts["torchscript"]["sha256"] for v in versions] == [_digest(b"ts")] * 2


@pytest.mark.parametrize(
    ("extras", "message"),
    [
        ({"onnx": b"again"}, "primary format"),
        ({"bad format!": b"x"}, "invalid artifact format"),
    ],
)
def test_bad_extra_formats_are_refused_before_storing(
    registry: Registry,
    signature: Signature,
    make_artifact: ArtifactFactory,
    tmp_path: Path,
    extras: dict[str, bytes],
    message: str,
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        registry.register_version(
            "iris",
            make_artifact(),
            artifact_format="onnx",
            signature=signature,
            extra_artifacts={k: make_artifact(v) for k, v in extras.items()},
        )
    assert _stored_files(tmp_path) == []
    assert registry.list_models() == []


def test_a_missing_extra_file_discards_what_was_stored(
    registry: Registry, signature: Signature, make_artifact: ArtifactFactory, tmp_path: Path
) -> None:
    with pytest.raises(NotFoundError, match="artifact file"):
        registry.register_version(
            "iris",
            make_artifact(b"onnx"),
            artifact_format="onnx",
            signature=signature,
            extra_artifacts={"torchscript": tmp_path / "missing.pt"},
        )
    assert _stored_files(tmp_path) == []
    assert registry.list_models() == []


def test_a_failed_insert_discards_every_artifact_but_those_in_use(
    registry: Registry,
    signature: Signature,
    make_artifact: ArtifactFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = registry.register_version(
        "iris",
        make_artifact(b"onnx v1"),
        artifact_format="onnx",
        signature=signature,
        extra_artifacts={"torchscript": make_artifact(b"shared ts")},
    )
    real = repository.add_version

    def add_then_fail(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise InjectedFault("disk full")

    monkeypatch.setattr(repository, "add_version", add_then_fail)
    with pytest.raises(InjectedFault):
        registry.register_version(
            "iris",
            make_artifact(b"onnx v2"),
            artifact_format="onnx",
            signature=signature,
            extra_artifacts={"torchscript": make_artifact(b"shared ts"), "x": make_artifact(b"x")},
        )
    remaining = {p.read_bytes() for p in _stored_files(tmp_path)}
    assert remaining == {b"onnx v1", b"shared ts"}  # v2's own bytes gone, v1's extra kept
    assert registry.artifact_path(first, "torchscript").read_bytes() == b"shared ts"
    assert [v.version for v in registry.list_versions("iris")] == [1]
