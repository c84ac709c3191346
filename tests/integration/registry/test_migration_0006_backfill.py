"""Migration 0006 replays the alias moves that 0005-era code recorded only as audit events
(``alias.set``/``alias.delete`` with from/to), so history and rollback cover them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from maas.errors import ConflictError
from maas.registry import Registry, migrate
from maas.registry.engine import create_registry_engine
from maas.store import LocalStore

_WHEN = sa.DateTime(timezone=True)
MODELS = sa.table(
    "models",
    sa.column("id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("description", sa.Text),
    sa.column("created_at", _WHEN),
)
VERSIONS = sa.table(
    "model_versions",
    sa.column("id", sa.Integer),
    sa.column("model_id", sa.Integer),
    sa.column("version", sa.Integer),
    sa.column("artifact_sha256", sa.String),
    sa.column("artifact_format", sa.String),
    sa.column("size_bytes", sa.BigInteger),
    sa.column("signature", sa.JSON),
    sa.column("metrics", sa.JSON),
    sa.column("lineage", sa.JSON),
    sa.column("created_at", _WHEN),
)
ALIASES = sa.table(
    "aliases",
    sa.column("model_id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("version_id", sa.Integer),
    sa.column("updated_at", _WHEN),
)
EVENTS = sa.table(
    "audit_events",
    sa.column("at", _WHEN),
    sa.column("action", sa.String),
    sa.column("model_name", sa.String),
    sa.column("version", sa.Integer),
    sa.column("actor", sa.String),
    sa.column("details", sa.JSON),
)
SIGNATURE = {
    "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
    "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}],
}
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _event(
    minutes: int, action: str, model: str, version: int | None, actor: str, **details: Any
) -> dict[str, Any]:
    return {
        "at": _at(minutes),
        "action": action,
        "model_name": model,
        "version": version,
        "actor": actor,
        "details": details,
    }


def _write_0005_era_rows(connection: sa.Connection) -> None:
    """What ``set_alias``/``delete_alias`` left before 0006: alias rows and audit events."""
    connection.execute(
        MODELS.insert(), [{"id": 1, "name": "iris", "description": "", "created_at": T0}]
    )
    connection.execute(
        VERSIONS.insert(),
        [
            {
                "id": n,
                "model_id": 1,
                "version": n,
                "artifact_sha256": f"{n:064x}",
                "artifact_format": "onnx",
                "size_bytes": 1,
                "signature": SIGNATURE,
                "metrics": {},
                "lineage": {},
                "created_at": _at(n),
            }
            for n in (1, 2, 3)
        ],
    )
    connection.execute(
        ALIASES.insert(),
        [{"model_id": 1, "name": "production", "version_id": 3, "updated_at": _at(30)}],
    )
    connection.execute(
        EVENTS.insert(),
        [
            _event(0, "model.create", "iris", None, "cli"),
            _event(10, "alias.set", "iris", 1, "alice", alias="production", to=1, **{"from": None}),
            _event(
                11, "alias.set", "iris", 2, "staging-bot", alias="staging", to=2, **{"from": None}
            ),
            _event(20, "alias.set", "iris", 2, "bob", alias="production", to=2, **{"from": 1}),
            _event(21, "alias.delete", "iris", 2, "carol", alias="staging", **{"from": 2}),
            _event(
                30,
                "alias.set",
                "iris",
                3,
                "dave",
                alias="production",
                to=3,
                forced=True,
                reason="hotfix",
                failed=["accuracy >= 0.9"],
                **{"from": 2},
            ),
            # An event of a model no longer there, and one without an alias: both skipped.
            _event(31, "alias.set", "ghost", 1, "eve", alias="production", to=1, **{"from": None}),
            _event(32, "alias.set", "iris", 1, "eve"),
        ],
    )


@pytest.fixture
def upgraded_from_0005(database_url: str, tmp_path: Path) -> Iterator[Registry]:
    engine = create_registry_engine(database_url)
    try:
        migrate.upgrade(engine, "0005")
        with engine.begin() as connection:
            _write_0005_era_rows(connection)
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    registry = Registry(database_url, LocalStore(tmp_path / "artifacts"))
    try:
        yield registry
    finally:
        registry.close()


def test_earlier_moves_become_history(upgraded_from_0005: Registry) -> None:
    moves = upgraded_from_0005.aliases.history("iris", "production")
    assert [(m.kind, m.version, m.previous, m.actor) for m in moves] == [
        ("set", 1, None, "alice"),
        ("set", 2, 1, "bob"),
        ("set", 3, 2, "dave"),
    ]
    assert [m.at for m in moves] == [_at(10), _at(20), _at(30)]
    assert [(m.forced, m.reason) for m in moves] == [(False, ""), (False, ""), (True, "hotfix")]
    staging = upgraded_from_0005.aliases.history("iris", "staging")
    assert [(m.kind, m.version, m.previous, m.actor) for m in staging] == [
        ("set", 2, None, "staging-bot"),
        ("delete", None, 2, "carol"),
    ]


def test_rollback_reaches_moves_made_before_the_upgrade(upgraded_from_0005: Registry) -> None:
    registry = upgraded_from_0005
    assert registry.aliases.rollback_target("iris", "production") == (3, 2)
    registry.aliases.set("iris", "production", 2, kind="rollback", expected_version=3)
    assert registry.aliases.rollback_target("iris", "production") == (2, 1)
    with pytest.raises(ConflictError, match="no earlier version"):
        registry.aliases.rollback_target("iris", "staging")


def test_the_upgraded_registry_gets_an_identity(upgraded_from_0005: Registry) -> None:
    assert len(upgraded_from_0005.registry_id()) == 36
    assert [v.version for v in upgraded_from_0005.list_versions("iris")] == [1, 2, 3]
