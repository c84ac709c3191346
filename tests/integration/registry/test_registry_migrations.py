from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from maas.config import Settings
from maas.errors import InvalidInputError
from maas.registry import Registry
from maas.registry.engine import create_registry_engine
from maas.registry.migrate import alembic_config
from maas.registry.tables import Base
from maas.store import LocalStore

TABLES = {
    "alembic_version",
    "models",
    "model_versions",
    "aliases",
    "audit_events",
    "version_configs",
    "model_gates",
    "jobs",
    "job_epochs",
    "job_logs",
    "version_artifacts",
    "registry_info",
    "api_keys",
    "version_archives",
    "alias_moves",
    "traffic_policies",
    "model_deployments",
    "upload_requests",
    "version_references",
}


def test_upgrade_twice_is_harmless(registry: Registry, database_url: str) -> None:
    registry.upgrade()
    registry.upgrade()
    engine = create_registry_engine(database_url)
    try:
        with engine.connect() as conn:
            head = ScriptDirectory.from_config(alembic_config()).get_current_head()
            assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [(head,)]
            assert set(inspect(conn).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def test_migrations_match_the_tables(registry: Registry, database_url: str) -> None:
    engine = create_registry_engine(database_url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diffs == []


def test_a_fresh_registry_has_no_tables_until_upgraded(database_url: str, tmp_path: Path) -> None:
    registry = Registry(database_url, LocalStore(tmp_path / "artifacts"))
    engine = create_registry_engine(database_url)
    try:
        with engine.connect() as conn:
            assert not TABLES & set(inspect(conn).get_table_names())
        registry.upgrade()
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) >= TABLES
    finally:
        engine.dispose()
        registry.close()


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_postgres_tables_live_in_the_test_schema(registry: Registry, database_url: str) -> None:
    engine = create_registry_engine(database_url)
    try:
        with engine.connect() as conn:
            schema = conn.execute(text("SELECT current_schema()")).scalar_one()
            found = conn.execute(
                text("SELECT table_name FROM information_schema.tables WHERE table_schema = :s"),
                {"s": schema},
            ).scalars()
            elsewhere = conn.execute(
                text(
                    "SELECT count(*) FROM information_schema.tables "
                    "WHERE table_name = 'alembic_version' AND table_schema = 'public'"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    assert schema.startswith("maas_test_")
    assert set(found) == TABLES
    assert elsewhere == 0


def test_from_settings_migrates_and_uses_the_settings(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    registry = Registry.from_settings(settings)
    try:
        assert registry.list_models() == []
        assert (tmp_path / "home" / "maas.db").is_file()
        stored = registry.store.put_bytes(b"x")
        assert (tmp_path / "home" / "artifacts" / "sha256" / stored.sha256[:2]).is_dir()
    finally:
        registry.close()


@pytest.mark.parametrize("url", ["not a url", "nosuchdb://x/y"])
def test_unusable_database_urls_are_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="unusable registry database URL"):
        Registry(url, LocalStore(tmp_path))
