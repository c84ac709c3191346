from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from maas.protocol.signature import Signature
from maas.registry import Registry

ArtifactFactory = Callable[..., Path]


def test_audit_log_records_every_change_in_order(
    registry: Registry, signature: Signature, make_artifact: ArtifactFactory
) -> None:
    first = registry.register_version(
        "iris", make_artifact(b"one"), artifact_format="onnx", signature=signature, actor="trainer"
    )
    registry.register_version(
        "iris", make_artifact(b"two"), artifact_format="torchscript", signature=signature
    )
    registry.aliases.set("iris", "production", 1, actor="alice")
    registry.aliases.set("iris", "production", 2, actor="bob")
    registry.aliases.delete("iris", "production", actor="carol")
    registry.register_version("mnist", make_artifact(), artifact_format="onnx", signature=signature)

    events = registry.audit_log()
    assert [(e.action, e.model_name, e.version, e.actor) for e in reversed(events)] == [
        ("model.create", "iris", None, "trainer"),
        ("version.create", "iris", 1, "trainer"),
        ("version.create", "iris", 2, "cli"),
        ("alias.set", "iris", 1, "alice"),
        ("alias.set", "iris", 2, "bob"),
        ("alias.delete", "iris", 2, "carol"),
        ("model.create", "mnist", None, "cli"),
        ("version.create", "mnist", 1, "cli"),
    ]
    ids = [e.id for e in events]
    assert ids == sorted(ids, reverse=True)
    assert all(e.at.tzinfo is not None for e in events)
    created = events[-2]
    assert created.details == {
        "sha256": first.artifact_sha256,
        "format": "onnx",
        "size_bytes": 3,
    }


def test_audit_log_filters_and_limits(
    registry: Registry, signature: Signature, make_artifact: ArtifactFactory
) -> None:
    for name in ["iris", "mnist", "iris"]:
        registry.register_version(
            name, make_artifact(), artifact_format="onnx", signature=signature
        )
    assert {e.model_name for e in registry.audit_log("mnist")} == {"mnist"}
    assert len(registry.audit_log("iris")) == 3
    assert [e.action for e in registry.audit_log(limit=1)] == ["version.create"]
    assert registry.audit_log("unknown") == []


def test_change_token_moves_on_every_change(
    registry: Registry, signature: Signature, make_artifact: ArtifactFactory
) -> None:
    tokens = [registry.change_token()]
    registry.register_version("iris", make_artifact(), artifact_format="onnx", signature=signature)
    tokens.append(registry.change_token())
    registry.aliases.set("iris", "production", 1)
    tokens.append(registry.change_token())
    registry.aliases.delete("iris", "production")
    tokens.append(registry.change_token())
    assert tokens[0] == (0, 0)
    assert tokens[1][1] == 1
    assert len(set(tokens)) == len(tokens)
    assert registry.change_token() == tokens[-1]
