from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from maas.errors import InvalidInputError, NotFoundError
from maas.protocol.signature import Signature
from maas.registry import Registry
from maas.registry.engine import create_registry_engine
from maas.registry.tables import AuditEventRow, ModelVersionRow

ArtifactFactory = Callable[..., Path]


def test_versions_are_numbered_per_model(
    registry: Registry, signature: Signature, make_artifact: ArtifactFactory
) -> None:
    numbers = [
        registry.register_version(
            "iris", make_artifact(b"v%d" % i), artifact_format="onnx", signature=signature
        ).version
        for i in range(3)
    ]
    other = registry.register_version(
        "mnist", make_artifact(), artifact_format="onnx", signature=signature
    )
    assert numbers == [1, 2, 3]
    assert other.version == 1
    assert [v.version for v in registry.list_versions("iris")] == [1, 2, 3]
    assert [m.name for m in registry.list_models()] == ["iris", "mnist"]


def test_a_version_keeps_what_was_registered(
    registry: Registry, signature: Signature, make_artifact: ArtifactFactory
) -> None:
    created = registry.register_version(
        "iris",
        make_artifact(b"bytes"),
        artifact_format="onnx",
        signature=signature,
        metrics={"accuracy": 0.97},
        lineage={"dataset_sha256": "ab" * 32, "params": {"epochs": 3}},
        description="Iris classifier",
    )
    stored = registry.get_version("iris", 1)
    assert stored == created
    assert stored.signature == signature
    assert stored.size_bytes == 5
    assert stored.metrics == {"accuracy": 0.97}
    assert stored.lineage["params"] == {"epochs": 3}
    assert stored.created_at.tzinfo is not None
    assert stored.created_at.utcoffset() == UTC.utcoffset(None)
    model = registry.get_model("iris")
    assert model.description == "Iris classifier"
    assert model.created_at.tzinfo is not None
    assert registry.artifact_path(stored).read_bytes() == b"bytes"


def test_unknown_models_and_versions_are_not_found(
    registry: Registry, signature: Signature, make_artifact: ArtifactFactory
) -> None:
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        registry.get_model("nope")
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        registry.list_versions("nope")
    registry.register_version("iris", make_artifact(), artifact_format="onnx", signature=signature)
    with pytest.raises(NotFoundError, match="version 7 of model 'iris'"):
        registry.get_version("iris", 7)


@pytest.mark.parametrize("name", ["", "-iris", ".hidden", "a/b", "../x", "x" * 129, "iris v2"])
def test_bad_model_names_are_refused(
    registry: Registry,
    signature: Signature,
    make_artifact: ArtifactFactory,
    tmp_path: Path,
    name: str,
) -> None:
    with pytest.raises(InvalidInputError, match="invalid model name"):
        registry.register_version(
            name, make_artifact(), artifact_format="onnx", signature=signature
        )
    assert registry.list_models() == []
    assert registry.audit_log() == []
    assert not any(p.is_file() for p in (tmp_path / "artifacts").rglob("*"))


def test_good_model_names_are_accepted(
    registry: Registry, signature: Signature, make_artifact: ArtifactFactory
) -> None:
    for name in ["Iris", "resnet50.v1", "a", "x" * 128, "0day_model-2"]:
        registry.register_version(
            name, make_artifact(), artifact_format="onnx", signature=signature
        )


def test_versions_are_immutable(
    registry: Registry, database_url: str, signature: Signature, make_artifact: ArtifactFactory
) -> None:
    registry.register_version("iris", make_artifact(), artifact_format="onnx", signature=signature)
    engine = create_registry_engine(database_url)
    try:
        with Session(engine) as session:
            row = session.scalars(select(ModelVersionRow)).one()
            row.artifact_sha256 = "0" * 64
            with pytest.raises(RuntimeError, match="immutable"):
                session.commit()
        with Session(engine) as session:
            event = session.scalars(select(AuditEventRow).limit(1)).one()
            event.actor = "somebody else"
            with pytest.raises(RuntimeError, match="append-only"):
                session.commit()
    finally:
        engine.dispose()
    assert registry.get_version("iris", 1).artifact_sha256 != "0" * 64
    assert {e.actor for e in registry.audit_log()} == {"cli"}
