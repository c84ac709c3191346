"""``DeploymentBook``: traffic policies (what they name must exist and serve), deployment
states, and the snapshot a server routes by."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from maas.errors import ConflictError, InvalidInputError, NotFoundError
from maas.protocol.signature import Signature
from maas.registry import Registry

ArtifactFactory = Callable[..., Path]

SPLIT = {"split": [{"target": "production", "weight": 90}, {"target": 3, "weight": 10}]}


@pytest.fixture
def three_versions(
    registry: Registry, signature: Signature, make_artifact: ArtifactFactory
) -> Registry:
    for i in range(1, 4):
        registry.register_version(
            "iris", make_artifact(b"v%d" % i), artifact_format="onnx", signature=signature
        )
    registry.aliases.set("iris", "production", 2)
    return registry


def test_set_replace_and_clear_a_policy(three_versions: Registry) -> None:
    book = three_versions.deployments
    assert book.get_policy("iris") is None
    stored = book.set_policy("iris", SPLIT, refs=["production", "3"], actor="alice")
    assert (stored.model_name, stored.policy, stored.actor) == ("iris", SPLIT, "alice")
    assert book.get_policy("iris") == stored
    replacement = {"shadow": {"target": 1, "fraction": 0.5}}
    replaced = book.set_policy("iris", replacement, refs=["1"], actor="bob")
    assert book.get_policy("iris") == replaced
    assert (replaced.policy, replaced.actor) == (replacement, "bob")
    assert replaced.updated_at >= stored.updated_at
    assert book.clear_policy("iris", actor="carol") is True
    assert book.get_policy("iris") is None
    assert book.clear_policy("iris") is False
    events = three_versions.audit_log("iris", action="traffic")
    assert [(e.action, e.actor) for e in reversed(events)] == [
        ("traffic.set", "alice"),
        ("traffic.set", "bob"),
        ("traffic.clear", "carol"),
    ]
    assert events[-1].details == {"policy": SPLIT}


def test_a_replaced_policy_no_longer_holds_what_it_named(three_versions: Registry) -> None:
    book = three_versions.deployments
    book.set_policy("iris", SPLIT, refs=["production", "3"])
    book.set_policy("iris", {"split": "to 3"}, refs=["3"])
    three_versions.aliases.delete("iris", "production")
    with pytest.raises(ConflictError, match="traffic policy"):
        three_versions.archive_version("iris", 3)


@pytest.mark.parametrize("ref", ["9", "09"])
def test_a_missing_version_is_refused(three_versions: Registry, ref: str) -> None:
    with pytest.raises(NotFoundError, match="version 9 of model 'iris'"):
        three_versions.deployments.set_policy("iris", SPLIT, refs=["production", ref])
    assert three_versions.deployments.get_policy("iris") is None
    assert three_versions.audit_log("iris", action="traffic") == []


def test_a_missing_alias_is_refused(three_versions: Registry) -> None:
    with pytest.raises(ConflictError, match="alias 'canary' of 'iris' does not exist"):
        three_versions.deployments.set_policy("iris", SPLIT, refs=["canary"])
    assert three_versions.deployments.get_policy("iris") is None


def test_an_archived_version_is_refused(three_versions: Registry) -> None:
    three_versions.archive_version("iris", 1)
    with pytest.raises(ConflictError, match="archived and cannot serve"):
        three_versions.deployments.set_policy("iris", SPLIT, refs=["production", "1"])
    assert three_versions.deployments.get_policy("iris") is None


@pytest.mark.parametrize("ref", ["", "0", "-1", "Production", "a b"])
def test_a_ref_that_names_nothing_is_refused(three_versions: Registry, ref: str) -> None:
    with pytest.raises(InvalidInputError):
        three_versions.deployments.set_policy("iris", SPLIT, refs=[ref])
    assert three_versions.deployments.get_policy("iris") is None


def test_policies_of_an_unknown_model(three_versions: Registry) -> None:
    book = three_versions.deployments
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        book.set_policy("nope", SPLIT, refs=[])
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        book.get_policy("nope")
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        book.clear_policy("nope")


def test_a_policy_must_be_a_json_object(three_versions: Registry) -> None:
    with pytest.raises(InvalidInputError, match="policy"):
        three_versions.deployments.set_policy("iris", {"x": float("nan")}, refs=[])


def test_deployment_state_defaults_to_loaded(three_versions: Registry) -> None:
    state = three_versions.deployments.get_state("iris")
    assert (state.model_name, state.state, state.actor, state.updated_at) == (
        "iris",
        "loaded",
        "",
        None,
    )
    assert three_versions.audit_log("iris", action="deployment") == []


def test_deployment_state_set_and_get(three_versions: Registry) -> None:
    book = three_versions.deployments
    unloaded = book.set_state("iris", "unloaded", actor="alice")
    assert (unloaded.state, unloaded.actor) == ("unloaded", "alice")
    assert book.get_state("iris") == unloaded
    loaded = book.set_state("iris", "loaded", actor="bob")
    assert book.get_state("iris") == loaded
    assert loaded.state == "loaded"
    assert loaded.updated_at is not None
    events = three_versions.audit_log("iris", action="deployment")
    assert [(e.action, e.actor) for e in reversed(events)] == [
        ("deployment.unload", "alice"),
        ("deployment.load", "bob"),
    ]


def test_unknown_states_and_models_are_refused(three_versions: Registry) -> None:
    with pytest.raises(ValueError, match="unknown deployment state"):
        three_versions.deployments.set_state("iris", "paused")
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        three_versions.deployments.set_state("nope", "unloaded")
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        three_versions.deployments.get_state("nope")
    assert three_versions.deployments.get_state("iris").state == "loaded"


def test_snapshot_of_an_empty_registry(registry: Registry) -> None:
    assert registry.deployments.snapshot() == {}


def test_snapshot_holds_what_a_server_routes_by(
    three_versions: Registry, signature: Signature, make_artifact: ArtifactFactory
) -> None:
    registry = three_versions
    registry.aliases.set("iris", "staging", 3)
    registry.archive_version("iris", 1)
    registry.deployments.set_policy("iris", SPLIT, refs=["production", "3"])
    registry.set_config("iris", 2, {"max_batch_size": 4})
    registry.set_config("iris", 2, {"max_batch_size": 8})
    registry.set_config("iris", 3, {"max_batch_size": 2})
    registry.register_version(
        "digits", make_artifact(b"digits"), artifact_format="onnx", signature=signature
    )
    registry.deployments.set_state("digits", "unloaded")
    registry.register_version(
        "gone", make_artifact(b"gone"), artifact_format="onnx", signature=signature
    )
    registry.archive_version("gone", 1)  # no version in service: not in the snapshot

    snapshot = registry.deployments.snapshot()
    assert set(snapshot) == {"iris", "digits"}
    iris = snapshot["iris"]
    assert iris.model_name == "iris"
    assert iris.versions == (2, 3)
    assert iris.aliases == {"production": 2, "staging": 3}
    assert iris.policy == SPLIT
    assert iris.unloaded is False
    assert iris.config_revisions == {2: 2, 3: 1}
    digits = snapshot["digits"]
    assert (digits.versions, digits.aliases, digits.policy) == ((1,), {}, None)
    assert digits.unloaded is True
    assert digits.config_revisions == {}


def test_snapshot_follows_changes(three_versions: Registry) -> None:
    registry = three_versions
    registry.deployments.set_policy("iris", SPLIT, refs=["production", "3"])
    registry.deployments.set_state("iris", "unloaded")
    registry.deployments.clear_policy("iris")
    registry.deployments.set_state("iris", "loaded")
    registry.aliases.set("iris", "production", 3)
    iris = registry.deployments.snapshot()["iris"]
    assert (iris.policy, iris.unloaded, iris.aliases) == (None, False, {"production": 3})
