"""Config revisions: appended, never edited; audited; stored with the version at registration."""

from __future__ import annotations

from pathlib import Path

import pytest

from maas.errors import InvalidInputError, NotFoundError
from maas.protocol.signature import Signature, TensorSpec
from maas.registry import Registry

SIGNATURE = Signature((TensorSpec("x", "FP32", (-1, 2)),), (TensorSpec("y", "FP32", (-1, 2)),))


def _register(registry: Registry, tmp_path: Path, config: dict[str, object] | None = None) -> int:
    artifact = tmp_path / "a.bin"
    artifact.write_bytes(b"artifact bytes")
    version = registry.register_version(
        "m", artifact, artifact_format="onnx", signature=SIGNATURE, config=config, actor="t"
    )
    return version.version


def test_config_given_at_registration_is_revision_one(registry: Registry, tmp_path: Path) -> None:
    number = _register(registry, tmp_path, {"batching": {"max_batch_size": 8}})
    revision = registry.get_config("m", number)
    assert revision is not None
    assert revision.revision == 1 and revision.config == {"batching": {"max_batch_size": 8}}
    assert revision.actor == "t"


def test_changes_append_revisions_and_are_audited(registry: Registry, tmp_path: Path) -> None:
    number = _register(registry, tmp_path)
    assert registry.get_config("m", number) is None
    registry.set_config("m", number, {"instances": {"count": 2}}, actor="alice")
    registry.set_config("m", number, {"instances": {"count": 3}}, actor="bob")
    revisions = registry.list_configs("m", number)
    assert [(r.revision, r.config["instances"]["count"], r.actor) for r in revisions] == [
        (1, 2, "alice"),
        (2, 3, "bob"),
    ]
    newest = registry.audit_log("m")[0]
    assert newest.action == "config.set" and newest.details == {"revision": 2}


def test_config_of_a_missing_version_or_bad_document_is_refused(
    registry: Registry, tmp_path: Path
) -> None:
    number = _register(registry, tmp_path)
    with pytest.raises(NotFoundError, match="version 9"):
        registry.set_config("m", 9, {}, actor="t")
    with pytest.raises(InvalidInputError):
        registry.set_config("m", number, {"x": float("nan")}, actor="t")
    assert registry.list_configs("m", number) == []
