"""Running the registry's Alembic migrations from code, without an alembic.ini."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, exc, text

from maas.registry.engine import writing
from maas.registry.transactions import database_error

__all__ = ["MIGRATIONS_DIR", "alembic_config", "upgrade"]

# Any constant will do: it only has to be the same for every maas process on the server.
_PG_MIGRATION_LOCK = 0x6D616173

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    """An Alembic config pointing at the migrations shipped in this package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` in one transaction; a no-op when already there.

    Two processes upgrading at once queue on a lock (SQLite's write lock, a PostgreSQL
    advisory lock) and the second finds nothing left to do.
    """
    config = alembic_config()
    try:
        with writing(engine).begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                )
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    except (exc.OperationalError, exc.InterfaceError) as error:  # gone, refusing, locked
        raise database_error(error) from error
