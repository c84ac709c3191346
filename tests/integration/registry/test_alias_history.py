"""An alias's history as a stack: set pushes, rollback pops, delete clears; a rollback
passes over versions archived since, and ``expected_version`` refuses a stale move."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from maas.errors import ConflictError, InvalidInputError, NotFoundError
from maas.protocol.signature import Signature
from maas.registry import Registry

ArtifactFactory = Callable[..., Path]


@pytest.fixture
def five_versions(
    registry: Registry, signature: Signature, make_artifact: ArtifactFactory
) -> Registry:
    for i in range(1, 6):
        registry.register_version(
            "iris", make_artifact(b"v%d" % i), artifact_format="onnx", signature=signature
        )
    return registry


def _roll_back(registry: Registry, alias: str = "production") -> int:
    """What ``maas.control`` does: find the target, move there guarded by the current one."""
    current, target = registry.aliases.rollback_target("iris", alias)
    registry.aliases.set(
        "iris",
        alias,
        target,
        kind="rollback",
        reason=f"rolled back from version {current}",
        expected_version=current,
    )
    return target


def test_history_lists_every_move_in_order(five_versions: Registry) -> None:
    book = five_versions.aliases
    book.set("iris", "production", 1, actor="alice")
    book.set("iris", "production", 2, actor="bob")
    _roll_back(five_versions)
    book.delete("iris", "production", actor="carol")
    book.set("iris", "production", 3)
    moves = book.history("iris", "production")
    assert [(m.kind, m.version, m.previous) for m in moves] == [
        ("set", 1, None),
        ("set", 2, 1),
        ("rollback", 1, 2),
        ("delete", None, 1),
        ("set", 3, None),
    ]
    assert [m.actor for m in moves[:4]] == ["alice", "bob", "cli", "carol"]
    assert moves[2].reason == "rolled back from version 2"
    assert all(m.model_name == "iris" and m.alias == "production" for m in moves)
    assert [m.id for m in moves] == sorted(m.id for m in moves)
    assert [m.at for m in moves] == sorted(m.at for m in moves)


def test_history_is_per_alias_and_empty_when_never_set(five_versions: Registry) -> None:
    five_versions.aliases.set("iris", "production", 1)
    five_versions.aliases.set("iris", "staging", 2)
    assert [m.version for m in five_versions.aliases.history("iris", "staging")] == [2]
    assert five_versions.aliases.history("iris", "canary") == []
    with pytest.raises(InvalidInputError, match="invalid alias name"):
        five_versions.aliases.history("iris", "Bad")
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        five_versions.aliases.history("nope", "production")


def test_rollback_audits_its_own_kind(five_versions: Registry) -> None:
    five_versions.aliases.set("iris", "production", 1)
    five_versions.aliases.set("iris", "production", 2)
    _roll_back(five_versions)
    [event] = five_versions.audit_log("iris", action="alias.rollback")
    assert event.version == 1
    assert {k: event.details[k] for k in ("alias", "from", "to")} == {
        "alias": "production",
        "from": 2,
        "to": 1,
    }
    assert "forced" not in event.details  # a rollback is not gated, so never forced
    assert len(five_versions.audit_log("iris", action="alias.set")) == 2


def test_rollbacks_walk_back_down_the_stack(five_versions: Registry) -> None:
    for version in (1, 2, 3):
        five_versions.aliases.set("iris", "production", version)
    assert five_versions.aliases.rollback_target("iris", "production") == (3, 2)
    assert _roll_back(five_versions) == 2
    assert five_versions.aliases.rollback_target("iris", "production") == (2, 1)
    assert _roll_back(five_versions) == 1  # not back to 3
    assert five_versions.aliases.get("iris", "production").version == 1
    with pytest.raises(ConflictError, match="no earlier version"):
        five_versions.aliases.rollback_target("iris", "production")


def test_a_set_after_a_rollback_pushes_again(five_versions: Registry) -> None:
    for version in (1, 2, 3):
        five_versions.aliases.set("iris", "production", version)
    _roll_back(five_versions)  # 3 -> 2
    five_versions.aliases.set("iris", "production", 4)
    assert five_versions.aliases.rollback_target("iris", "production") == (4, 2)
    assert _roll_back(five_versions) == 2
    assert _roll_back(five_versions) == 1


def test_setting_the_same_version_again_is_not_a_rollback_target(
    five_versions: Registry,
) -> None:
    for version in (1, 2, 2):
        five_versions.aliases.set("iris", "production", version)
    assert five_versions.aliases.rollback_target("iris", "production") == (2, 1)
    assert _roll_back(five_versions) == 1
    with pytest.raises(ConflictError, match="no earlier version"):
        five_versions.aliases.rollback_target("iris", "production")


def test_rollback_passes_over_archived_versions(five_versions: Registry) -> None:
    for version in (1, 2, 3, 4):
        five_versions.aliases.set("iris", "production", version)
    five_versions.archive_version("iris", 3)
    assert five_versions.aliases.rollback_target("iris", "production") == (4, 2)
    assert _roll_back(five_versions) == 2
    assert five_versions.aliases.rollback_target("iris", "production") == (2, 1)
    assert _roll_back(five_versions) == 1


def test_rollback_with_only_archived_versions_behind(five_versions: Registry) -> None:
    for version in (1, 2, 3):
        five_versions.aliases.set("iris", "production", version)
    five_versions.archive_version("iris", 1)
    five_versions.archive_version("iris", 2)
    with pytest.raises(ConflictError, match="no earlier version"):
        five_versions.aliases.rollback_target("iris", "production")


def test_a_delete_clears_what_rollback_can_return_to(five_versions: Registry) -> None:
    for version in (1, 2):
        five_versions.aliases.set("iris", "production", version)
    five_versions.aliases.delete("iris", "production")
    with pytest.raises(ConflictError, match="no earlier version"):
        five_versions.aliases.rollback_target("iris", "production")
    five_versions.aliases.set("iris", "production", 3)
    with pytest.raises(ConflictError, match="no earlier version"):
        five_versions.aliases.rollback_target("iris", "production")
    five_versions.aliases.set("iris", "production", 4)
    assert five_versions.aliases.rollback_target("iris", "production") == (4, 3)


def test_nothing_to_roll_back(five_versions: Registry) -> None:
    with pytest.raises(ConflictError, match="no earlier version"):
        five_versions.aliases.rollback_target("iris", "production")  # never set
    five_versions.aliases.set("iris", "production", 1)
    with pytest.raises(ConflictError, match="no earlier version") as caught:
        five_versions.aliases.rollback_target("iris", "production")  # set once
    assert caught.value.details == {"model": "iris", "alias": "production"}
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        five_versions.aliases.rollback_target("nope", "production")


def test_expected_version_refuses_a_move_made_meanwhile(five_versions: Registry) -> None:
    for version in (1, 2):
        five_versions.aliases.set("iris", "production", version)
    current, target = five_versions.aliases.rollback_target("iris", "production")
    five_versions.aliases.set("iris", "production", 3)  # someone else moved it
    before = five_versions.aliases.history("iris", "production")
    with pytest.raises(ConflictError, match="moved meanwhile") as caught:
        five_versions.aliases.set(
            "iris", "production", target, kind="rollback", expected_version=current
        )
    assert caught.value.details["version"] == 3
    assert five_versions.aliases.get("iris", "production").version == 3
    assert five_versions.aliases.history("iris", "production") == before
    with pytest.raises(ConflictError, match="moved meanwhile"):
        five_versions.aliases.set("iris", "canary", 1, expected_version=1)  # never set


def test_an_alias_named_by_a_traffic_policy_cannot_be_deleted(five_versions: Registry) -> None:
    five_versions.aliases.set("iris", "production", 1)
    five_versions.aliases.set("iris", "staging", 2)
    five_versions.deployments.set_policy("iris", {"split": "any"}, refs=["production", "3"])
    with pytest.raises(ConflictError, match="traffic policy"):
        five_versions.aliases.delete("iris", "production")
    assert five_versions.aliases.get("iris", "production").version == 1
    assert [m.kind for m in five_versions.aliases.history("iris", "production")] == ["set"]
    five_versions.aliases.delete("iris", "staging")  # not named: fine
    five_versions.deployments.clear_policy("iris")
    five_versions.aliases.delete("iris", "production")
    assert five_versions.aliases.list_for("iris") == []
