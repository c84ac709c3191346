"""Archived versions: out of service and out of the default lists, record kept, artifacts
collected only when no version in service still uses the same bytes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from maas.errors import ConflictError, NotFoundError
from maas.protocol.signature import Signature
from maas.registry import Registry
from maas.store import StoredArtifact

ArtifactFactory = Callable[..., Path]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def three_versions(
    registry: Registry, signature: Signature, make_artifact: ArtifactFactory
) -> Registry:
    for i in range(1, 4):
        registry.register_version(
            "iris", make_artifact(b"v%d" % i), artifact_format="onnx", signature=signature
        )
    return registry


def test_an_archived_version_leaves_the_lists_but_keeps_its_record(
    three_versions: Registry,
) -> None:
    archived = three_versions.archive_version("iris", 2, actor="alice", reason="leaky")
    assert archived.version == 2
    assert archived.archived is not None
    assert (archived.archived.actor, archived.archived.reason) == ("alice", "leaky")
    assert [v.version for v in three_versions.list_versions("iris")] == [1, 3]
    everything = three_versions.list_versions("iris", include_archived=True)
    assert [(v.version, v.archived is not None) for v in everything] == [
        (1, False),
        (2, True),
        (3, False),
    ]
    by_number = three_versions.resolve("iris", 2)
    assert by_number.archived == archived.archived
    assert three_versions.resolve("iris", "2").archived is not None
    assert three_versions.get_version("iris", 2).archived is not None


def test_the_archive_is_audited(three_versions: Registry) -> None:
    three_versions.archive_version("iris", 1, actor="bob", reason="superseded")
    [event] = three_versions.audit_log("iris", action="version.archive")
    assert (event.version, event.actor, event.details) == (1, "bob", {"reason": "superseded"})


def test_archiving_twice_is_refused_and_audited_once(three_versions: Registry) -> None:
    three_versions.archive_version("iris", 1)
    with pytest.raises(ConflictError, match="already archived"):
        three_versions.archive_version("iris", 1)
    assert len(three_versions.audit_log("iris", action="version.archive")) == 1


def test_archiving_what_does_not_exist(three_versions: Registry) -> None:
    with pytest.raises(NotFoundError, match="version 9 of model 'iris'"):
        three_versions.archive_version("iris", 9)
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        three_versions.archive_version("nope", 1)


def test_the_default_route_skips_archived_versions(three_versions: Registry) -> None:
    three_versions.archive_version("iris", 3)
    assert three_versions.resolve("iris").version == 2
    three_versions.archive_version("iris", 2)
    assert three_versions.resolve("iris", None).version == 1
    three_versions.archive_version("iris", 1)
    with pytest.raises(NotFoundError, match="has no versions"):
        three_versions.resolve("iris")


def test_archiving_is_refused_while_an_alias_points_at_it(three_versions: Registry) -> None:
    three_versions.aliases.set("iris", "production", 2)
    three_versions.aliases.set("iris", "staging", 2)
    with pytest.raises(ConflictError, match="production, staging") as caught:
        three_versions.archive_version("iris", 2)
    assert caught.value.details["aliases"] == ["production", "staging"]
    assert three_versions.get_version("iris", 2).archived is None
    assert three_versions.audit_log("iris", action="version.archive") == []
    three_versions.aliases.set("iris", "production", 3)
    three_versions.aliases.delete("iris", "staging")
    assert three_versions.archive_version("iris", 2).archived is not None


@pytest.mark.parametrize("ref", ["2", "02"])
def test_archiving_is_refused_while_a_traffic_policy_names_it(
    three_versions: Registry, ref: str
) -> None:
    three_versions.deployments.set_policy("iris", {"split": "any"}, refs=["3", ref])
    with pytest.raises(ConflictError, match="traffic policy"):
        three_versions.archive_version("iris", 2)
    assert three_versions.get_version("iris", 2).archived is None
    three_versions.deployments.set_policy("iris", {"split": "any"}, refs=["3"])
    three_versions.archive_version("iris", 2)
    three_versions.deployments.clear_policy("iris")
    three_versions.archive_version("iris", 3)


def test_an_alias_cannot_move_to_an_archived_version(three_versions: Registry) -> None:
    three_versions.archive_version("iris", 1)
    for alias in ("production", "staging"):
        with pytest.raises(ConflictError, match="archived and cannot serve"):
            three_versions.aliases.set("iris", alias, 1)
    assert three_versions.aliases.list_for("iris") == []
    assert three_versions.aliases.history("iris", "production") == []


def test_the_artifacts_of_an_archived_version_are_collected(
    registry: Registry, signature: Signature, make_artifact: ArtifactFactory
) -> None:
    version = registry.register_version(
        "iris",
        make_artifact(b"only mine"),
        artifact_format="onnx",
        signature=signature,
        extra_artifacts={"torchscript": make_artifact(b"my torchscript")},
    )
    path = registry.artifact_path(version)
    archived = registry.archive_version("iris", 1)
    assert not path.exists()
    assert not registry.store.exists(_digest(b"only mine"))
    assert not registry.store.exists(_digest(b"my torchscript"))
    for artifact_format in (None, "onnx", "torchscript"):
        with pytest.raises(NotFoundError, match="is archived"):
            registry.artifact_path(archived, artifact_format)


def test_bytes_shared_with_a_version_in_service_are_kept(
    registry: Registry, signature: Signature, make_artifact: ArtifactFactory
) -> None:
    for _ in range(2):
        registry.register_version(
            "iris", make_artifact(b"same bytes"), artifact_format="onnx", signature=signature
        )
    registry.archive_version("iris", 1)
    assert registry.artifact_path(registry.get_version("iris", 2)).read_bytes() == b"same bytes"
    registry.archive_version("iris", 2)
    assert not registry.store.exists(_digest(b"same bytes"))


def test_bytes_shared_across_models_are_kept(
    registry: Registry, signature: Signature, make_artifact: ArtifactFactory
) -> None:
    for name in ("iris", "digits"):
        registry.register_version(
            name, make_artifact(b"same bytes"), artifact_format="onnx", signature=signature
        )
    registry.archive_version("iris", 1)
    assert registry.store.exists(_digest(b"same bytes"))


def test_bytes_shared_with_an_extra_artifact_are_kept(
    registry: Registry, signature: Signature, make_artifact: ArtifactFactory
) -> None:
    registry.register_version(
        "iris",
        make_artifact(b"served"),
        artifact_format="onnx",
        signature=signature,
        extra_artifacts={"torchscript": make_artifact(b"shared")},
    )
    # Version 2 serves, as its primary artifact, the bytes version 1 keeps as an extra.
    registry.register_version(
        "iris", make_artifact(b"shared"), artifact_format="torchscript", signature=signature
    )
    # Version 3 keeps version 1's served bytes as its own extra.
    registry.register_version(
        "iris",
        make_artifact(b"three"),
        artifact_format="onnx",
        signature=signature,
        extra_artifacts={"torchscript": make_artifact(b"served")},
    )
    registry.archive_version("iris", 1)
    assert registry.store.exists(_digest(b"shared"))
    assert registry.store.exists(_digest(b"served"))
    v3 = registry.get_version("iris", 3)
    assert registry.artifact_path(v3, "torchscript").read_bytes() == b"served"
    registry.archive_version("iris", 3)
    assert not registry.store.exists(_digest(b"served"))
    assert not registry.store.exists(_digest(b"three"))
    assert registry.store.exists(_digest(b"shared"))


def test_archived_versions_do_not_hold_bytes_for_each_other(
    registry: Registry, signature: Signature, make_artifact: ArtifactFactory
) -> None:
    for _ in range(2):
        registry.register_version(
            "iris", make_artifact(b"same bytes"), artifact_format="onnx", signature=signature
        )
    registry.archive_version("iris", 2)
    assert registry.store.exists(_digest(b"same bytes"))
    registry.archive_version("iris", 1)
    assert not registry.store.exists(_digest(b"same bytes"))


def test_new_version_with_the_bytes_of_an_archived_one_gets_them_back(
    registry: Registry, signature: Signature, make_artifact: ArtifactFactory
) -> None:
    registry.register_version(
        "iris", make_artifact(b"again"), artifact_format="onnx", signature=signature
    )
    registry.archive_version("iris", 1)
    assert not registry.store.exists(_digest(b"again"))
    again = registry.register_version(
        "iris", make_artifact(b"again"), artifact_format="onnx", signature=signature
    )
    assert registry.artifact_path(again).read_bytes() == b"again"


def test_an_archive_between_put_and_commit_does_not_lose_the_new_version(
    registry: Registry,
    signature: Signature,
    make_artifact: ArtifactFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The archive collects the bytes version 2 just stored (no version in service used
    them yet); ``register_version`` must put them back once version 2 is recorded."""
    registry.register_version(
        "iris",
        make_artifact(b"shared"),
        artifact_format="onnx",
        signature=signature,
        extra_artifacts={"torchscript": make_artifact(b"extra shared")},
    )
    store = registry.store
    real_put = store.put_file
    puts: list[Path] = []

    def put_then_archive(source: Path) -> StoredArtifact:
        stored = real_put(source)
        puts.append(source)
        if len(puts) == 2:  # both of version 2's files are in the store, uncommitted
            registry.archive_version("iris", 1)
            assert not store.exists(_digest(b"shared"))
            assert not store.exists(_digest(b"extra shared"))
        return stored

    monkeypatch.setattr(store, "put_file", put_then_archive)
    second = registry.register_version(
        "iris",
        make_artifact(b"shared"),
        artifact_format="onnx",
        signature=signature,
        extra_artifacts={"torchscript": make_artifact(b"extra shared")},
    )
    assert second.version == 2
    assert registry.get_version("iris", 1).archived is not None
    assert registry.artifact_path(second).read_bytes() == b"shared"
    assert registry.artifact_path(second, "torchscript").read_bytes() == b"extra shared"
