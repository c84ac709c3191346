"""The registry's identity: made once with the database, the same for every process on it."""

from __future__ import annotations

import uuid
from pathlib import Path

from maas.registry import Registry
from maas.store import LocalStore


def test_the_id_is_a_uuid_and_survives_reopening(
    registry: Registry, database_url: str, tmp_path: Path
) -> None:
    first = registry.registry_id()
    assert str(uuid.UUID(first)) == first
    registry.upgrade()  # a no-op migration must not remake it
    reopened = Registry(database_url, LocalStore(tmp_path / "artifacts"))
    try:
        reopened.upgrade()
        assert reopened.registry_id() == first
    finally:
        reopened.close()


def test_two_registries_on_one_database_share_the_id(
    registry: Registry, database_url: str, tmp_path: Path
) -> None:
    other = Registry(database_url, LocalStore(tmp_path / "elsewhere"))
    try:
        assert other.registry_id() == registry.registry_id()
    finally:
        other.close()


def test_another_database_has_another_id(registry: Registry, tmp_path: Path) -> None:
    other = Registry(f"sqlite:///{tmp_path}/other.db", LocalStore(tmp_path / "other"))
    try:
        other.upgrade()
        assert other.registry_id() != registry.registry_id()
    finally:
        other.close()
