from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from maas.errors import InvalidInputError, NotFoundError
from maas.protocol.signature import Signature
from maas.registry import Registry

ArtifactFactory = Callable[..., Path]


@pytest.fixture
def three_versions(
    registry: Registry, signature: Signature, make_artifact: ArtifactFactory
) -> Registry:
    for i in range(3):
        registry.register_version(
            "iris", make_artifact(b"v%d" % i), artifact_format="onnx", signature=signature
        )
    return registry


def test_resolve_defaults_to_the_newest_version(three_versions: Registry) -> None:
    assert three_versions.resolve("iris").version == 3


def test_resolve_prefers_the_production_alias(three_versions: Registry) -> None:
    three_versions.aliases.set("iris", "production", 2)
    assert three_versions.resolve("iris").version == 2
    assert three_versions.resolve("iris", None).version == 2


def test_resolve_explicit_versions_and_aliases(three_versions: Registry) -> None:
    three_versions.aliases.set("iris", "staging", 1)
    assert three_versions.resolve("iris", 3).version == 3
    assert three_versions.resolve("iris", "2").version == 2
    assert three_versions.resolve("iris", "staging").version == 1


def test_resolve_unknown_references(three_versions: Registry) -> None:
    with pytest.raises(NotFoundError, match="version 9 of model 'iris'"):
        three_versions.resolve("iris", 9)
    with pytest.raises(NotFoundError, match="version 9 of model 'iris'"):
        three_versions.resolve("iris", "9")
    with pytest.raises(NotFoundError, match="alias 'canary' of model 'iris'"):
        three_versions.resolve("iris", "canary")
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        three_versions.resolve("nope")


def test_alias_to_a_missing_version_is_refused_and_not_recorded(three_versions: Registry) -> None:
    before = three_versions.audit_log()
    with pytest.raises(NotFoundError, match="version 4 of model 'iris'"):
        three_versions.aliases.set("iris", "production", 4)
    with pytest.raises(NotFoundError, match="model 'nope' not found"):
        three_versions.aliases.set("nope", "production", 1)
    assert three_versions.aliases.list_for("iris") == []
    assert three_versions.audit_log() == before


@pytest.mark.parametrize(
    "alias", ["", "1", "42", "Production", "-x", "_x", "a b", "a" * 64, "../p"]
)
def test_bad_alias_names_are_refused(three_versions: Registry, alias: str) -> None:
    before = three_versions.audit_log()
    with pytest.raises(InvalidInputError, match="invalid alias name"):
        three_versions.aliases.set("iris", alias, 1)
    assert three_versions.aliases.list_for("iris") == []
    assert three_versions.audit_log() == before


def test_moving_an_alias_records_from_and_to(three_versions: Registry) -> None:
    first = three_versions.aliases.set("iris", "production", 1, actor="alice")
    moved = three_versions.aliases.set("iris", "production", 3, actor="bob")
    assert (first.version, moved.version) == (1, 3)
    assert moved.updated_at >= first.updated_at
    assert [(a.name, a.version) for a in three_versions.aliases.list_for("iris")] == [
        ("production", 3)
    ]
    newest, older = three_versions.audit_log("iris", limit=2)
    assert (newest.action, newest.actor, newest.version) == ("alias.set", "bob", 3)
    assert newest.details == {"alias": "production", "from": 1, "to": 3}
    assert older.details == {"alias": "production", "from": None, "to": 1}


def test_aliases_are_listed_by_name(three_versions: Registry) -> None:
    three_versions.aliases.set("iris", "staging", 3)
    three_versions.aliases.set("iris", "production", 2)
    aliases = three_versions.aliases.list_for("iris")
    assert [(a.model_name, a.name, a.version) for a in aliases] == [
        ("iris", "production", 2),
        ("iris", "staging", 3),
    ]


def test_delete_alias(three_versions: Registry) -> None:
    three_versions.aliases.set("iris", "production", 2)
    three_versions.aliases.delete("iris", "production", actor="carol")
    assert three_versions.aliases.list_for("iris") == []
    assert three_versions.resolve("iris").version == 3
    event = three_versions.audit_log("iris", limit=1)[0]
    assert (event.action, event.actor, event.version) == ("alias.delete", "carol", 2)
    with pytest.raises(NotFoundError, match="alias 'production' of model 'iris'"):
        three_versions.aliases.delete("iris", "production")
