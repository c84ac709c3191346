"""``registry.references``: one current input reference per version, replaced with a
growing revision, audited, and stored in the same transaction as a trained version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from maas.errors import InvalidInputError, NotFoundError
from maas.protocol.signature import Signature, TensorSpec
from maas.registry import Registry
from maas.testing.models import write_linear_model

SIGNATURE = Signature(
    inputs=(TensorSpec("input", "FP32", (-1, 4)),),
    outputs=(TensorSpec("logits", "FP32", (-1, 3)),),
)


def _register(registry: Registry, tmp_path: Path, **options: Any) -> int:
    artifact = write_linear_model(tmp_path / "m.onnx")
    version = registry.register_version(
        "m",
        artifact,
        artifact_format="onnx",
        signature=SIGNATURE,
        **options,
    )
    return version.version


def test_put_replace_and_read(registry: Registry, tmp_path: Path) -> None:
    number = _register(registry, tmp_path)
    assert registry.references.get("m", number) is None
    first = registry.references.put("m", number, {"rows": 1}, actor="a", details={"rows": 1})
    assert (first.revision, first.actor, first.document) == (1, "a", {"rows": 1})
    second = registry.references.put("m", number, {"rows": 2}, actor="b")
    assert (second.revision, second.document) == (2, {"rows": 2})
    assert registry.references.get("m", number) == second
    assert registry.references.revisions() == {("m", number): 2}
    events = registry.audit_log("m", action="reference.set")
    assert [(e.actor, e.details["revision"], e.details["replaced"]) for e in events] == [
        ("b", 2, 1),
        ("a", 1, None),
    ]
    assert events[1].details["rows"] == 1


def test_a_reference_names_a_version_that_exists(registry: Registry, tmp_path: Path) -> None:
    _register(registry, tmp_path)
    with pytest.raises(NotFoundError):
        registry.references.put("m", 9, {}, actor="a")
    with pytest.raises(NotFoundError):
        registry.references.get("ghost", 1)
    with pytest.raises(InvalidInputError, match="reference"):
        registry.references.put("m", 1, {"bad": float("nan")}, actor="a")


def test_a_registered_version_can_bring_its_reference(registry: Registry, tmp_path: Path) -> None:
    number = _register(
        registry,
        tmp_path,
        input_reference={"rows": 5},
        reference_details={"rows": 5},
        actor="train",
    )
    stored = registry.references.get("m", number)
    assert stored is not None and (stored.revision, stored.actor) == (1, "train")
    (event,) = registry.audit_log("m", action="reference.set")
    assert event.version == number and event.details == {"rows": 5, "revision": 1, "replaced": None}
