"""Creating the registry's engine, with the per-connection settings SQLite needs.

SQLite: the parent folder is created, every connection gets ``busy_timeout`` and
``foreign_keys=ON``, and maas emits BEGIN itself (pysqlite's own is lazy and skips DDL) so
that write transactions can start with ``BEGIN IMMEDIATE``: they take the write lock
first and queue behind each other instead of failing when two read-then-write at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import make_url

from maas.errors import InvalidInputError

__all__ = ["BUSY_TIMEOUT_MS", "WRITE_OPTION", "create_registry_engine", "writing"]

BUSY_TIMEOUT_MS = 30_000
WRITE_OPTION = "maas_write"


def create_registry_engine(database_url: str) -> Engine:
    """An engine for ``database_url``; SQLite files get their folder and pragmas."""
    try:
        url = make_url(database_url)
        if url.get_backend_name() != "sqlite":
            return create_engine(url, pool_pre_ping=True)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as error:
        raise InvalidInputError(f"unusable registry database URL: {error}") from error
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def writing(engine: Engine) -> Engine:
    """The same engine, marked so that its transactions take the write lock up front."""
    return engine.execution_options(**{WRITE_OPTION: True})


def _on_sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _on_sqlite_begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
