"""Creating the registry's engine, with the per-connection settings SQLite needs.

SQLite: the parent folder is created, every connection gets ``busy_timeout`` and
``foreign_keys=ON``, and maas emits BEGIN itself (pysqlite's own is lazy and skips DDL) so
that write transactions can start with ``BEGIN IMMEDIATE``: they take the write lock
first and queue behind each other instead of failing when two read-then-write at once.

The database runs in WAL mode (``PRAGMA journal_mode=WAL``, asked once per engine: the
mode is a property of the file, kept by SQLite from then on). Readers then never wait for
a writer, nor a writer for readers: a server keeps answering every read (its refresh, the
management API's listings) while a job worker or the CLI writes, and only writers queue
behind each other. WAL needs every process on one machine (not a network file system),
which is how maas shares a SQLite file anyway.

How long a writer waits for the lock (``busy_timeout_s``) depends on who it is:

- the server: ``Settings.db_busy_timeout_s`` (``MAAS_DB_BUSY_TIMEOUT_S``, 1 s). A request
  that cannot get the lock in that time answers 503 ``unavailable`` at once instead of
  holding the caller (and a thread) for half a minute; its client may retry. maas's own
  write transactions last milliseconds, so only a stuck or foreign lock holder hits it.
- job workers and the CLI: ``TOOL_BUSY_TIMEOUT_S`` (30 s). They write beside the server
  (a worker's progress every 0.5 s, epochs, logs) and have nobody to answer quickly; a
  failed progress write would fail a training job for a lock held a second too long.

PostgreSQL: ``pool_pre_ping`` and a connect timeout of the same bound (at least 1 s), so
a database that went away is an error within that time rather than at the TCP timeout.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import make_url

from maas.errors import InvalidInputError

__all__ = [
    "TOOL_BUSY_TIMEOUT_S",
    "WRITE_OPTION",
    "create_registry_engine",
    "writing",
]

log = logging.getLogger(__name__)

#: How long job workers and the CLI wait for the write lock (see the module docstring).
TOOL_BUSY_TIMEOUT_S = 30.0
WRITE_OPTION = "maas_write"


def create_registry_engine(
    database_url: str, *, busy_timeout_s: float = TOOL_BUSY_TIMEOUT_S
) -> Engine:
    """An engine for ``database_url``; SQLite files get their folder, WAL and pragmas.

    ``busy_timeout_s`` bounds how long a statement waits for a lock another connection
    holds before the registry answers ``UnavailableError``.
    """
    try:
        url = make_url(database_url)
        if url.get_backend_name() != "sqlite":
            connect_args: dict[str, Any] = {}
            if url.get_backend_name() == "postgresql":
                connect_args["connect_timeout"] = max(1, math.ceil(busy_timeout_s))
            return create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    except (exc.ArgumentError, exc.NoSuchModuleError, ImportError) as error:
        raise InvalidInputError(f"unusable registry database URL: {error}") from error
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    event.listen(engine, "connect", _SqlitePragmas(busy_timeout_s))
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def writing(engine: Engine) -> Engine:
    """The same engine, marked so that its transactions take the write lock up front."""
    return engine.execution_options(**{WRITE_OPTION: True})


class _SqlitePragmas:
    """The settings of each new SQLite connection; WAL is asked for until it is on."""

    def __init__(self, busy_timeout_s: float) -> None:
        self._busy_timeout_ms = max(0, int(busy_timeout_s * 1000))
        self._wal_checked = False

    def __call__(self, dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not self._wal_checked:
                self._wal_checked = self._ask_for_wal(cursor)
        finally:
            cursor.close()

    @staticmethod
    def _ask_for_wal(cursor: Any) -> bool:
        """Switch the file to WAL (a no-op once it is); False to ask again next time."""
        try:
            mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except Exception as error:  # locked by another process right now: not fatal
            log.warning("the registry database stays in its journal mode for now: %s", error)
            return False
        if str(mode).lower() != "wal":  # an in-memory database, say: nothing to do
            log.debug("the registry database runs in journal mode %s", mode)
        return True


def _on_sqlite_begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
