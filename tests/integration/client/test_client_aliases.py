"""Aliases, promotion and rollback through the SDK."""

from __future__ import annotations

from pathlib import Path

import pytest

from maas.client import Alias, Client
from maas.errors import NotFoundError


def test_set_alias_by_number_and_by_alias_then_delete(
    client: Client, linear: Path, linear_b: Path
) -> None:
    client.upload("lin", linear)
    client.upload("lin", linear_b)
    staging = client.set_alias("lin", "staging", 2)
    assert isinstance(staging, Alias)
    assert (staging.model, staging.alias, staging.version) == ("lin", "staging", 2)
    assert staging.updated_at.tzinfo is not None
    copied = client.set_alias("lin", "candidate", "staging")  # an alias copies its version
    assert copied.version == 2
    assert {a.alias: a.version for a in client.list_aliases("lin")} == {
        "candidate": 2,
        "staging": 2,
    }
    assert client.get_model("lin").aliases == {"candidate": 2, "staging": 2}

    client.delete_alias("lin", "candidate")
    assert [a.alias for a in client.list_aliases("lin")] == ["staging"]
    moves = client.alias_history("lin", "candidate")
    assert [(m.kind, m.version, m.previous) for m in moves] == [
        ("set", 2, None),
        ("delete", None, 2),
    ]
    with pytest.raises(NotFoundError):
        client.delete_alias("lin", "candidate")


def test_promote_and_rollback_walk_the_history(
    client: Client, linear: Path, linear_b: Path
) -> None:
    client.upload("lin", linear)
    client.upload("lin", linear_b)
    assert client.promote("lin", 1).version == 1
    assert client.promote("lin", 2, reason="better").version == 2
    back = client.rollback("lin")
    assert (back.alias, back.version) == ("production", 1)
    moves = client.alias_history("lin", "production")
    assert [(m.kind, m.version, m.previous) for m in moves] == [
        ("set", 1, None),
        ("set", 2, 1),
        ("rollback", 1, 2),
    ]
    assert all(m.model == "lin" and m.alias == "production" for m in moves)
    assert not moves[1].forced and moves[1].reason == "better"  # every move keeps its reason
    assert moves[2].reason == "rolled back from version 2"
    assert moves[0].id < moves[1].id < moves[2].id
    assert all(m.actor.startswith("api:") for m in moves)

    assert client.promote("lin", 2, alias="canary").alias == "canary"
    assert client.get_model("lin").aliases == {"canary": 2, "production": 1}
    assert client.set_alias("lin", "canary", 1).version == 1
    assert client.rollback("lin", alias="canary").version == 2
