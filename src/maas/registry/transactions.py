"""Sessions that commit or roll back as a unit, with database failures turned into maas errors.

A user can provoke a constraint violation (two writers racing) or meet a database that
cannot take the change now; those become ``ConflictError``, ``UnavailableError`` (the
database locked beyond the engine's busy timeout, or gone) and ``InsufficientStorageError``
(its disk full). Their messages name the registry database, never its path or the
driver's text (which the log keeps). Anything else is a bug and propagates as is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc
from sqlalchemy.orm import Session, sessionmaker

from maas.errors import ConflictError, InsufficientStorageError, MaasError, UnavailableError

__all__ = ["RETRY_AFTER_S", "database_error", "transaction"]

log = logging.getLogger(__name__)

# SQLite's primary result codes, and PostgreSQL's SQLSTATEs, for what is not a bug.
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_FULL = 5, 6, 13
_PG_DISK_FULL = "53100"
_PG_BUSY = {"55P03", "40P01", "57014"}  # lock_not_available, deadlock, query cancelled

#: Seconds a client may wait before retrying a change the database was too busy for.
RETRY_AFTER_S = 1


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One session, committed when the block ends, rolled back on any error."""
    try:
        with sessions() as session, session.begin():
            yield session
    except exc.IntegrityError as error:
        raise ConflictError(
            f"the registry refused a change that conflicts with its state: {error.orig}"
        ) from error
    except (exc.OperationalError, exc.InterfaceError, exc.TimeoutError) as error:
        raise database_error(error) from error


def database_error(error: exc.SQLAlchemyError) -> MaasError:
    """The maas error for a database that could not do its part (logged with the cause)."""
    orig = getattr(error, "orig", None) or error
    log.warning("registry database: %s", orig)
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    primary = sqlite_code & 0xFF if isinstance(sqlite_code, int) else None
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    text = str(orig).lower()
    if primary == _SQLITE_FULL or sqlstate == _PG_DISK_FULL or "disk is full" in text:
        return InsufficientStorageError(
            "the registry database has no space left on its disk; nothing was recorded",
            {"storage": "registry database"},
        )
    if (
        primary in (_SQLITE_BUSY, _SQLITE_LOCKED)
        or sqlstate in _PG_BUSY
        or "locked" in text
        or isinstance(error, exc.TimeoutError)
    ):
        return UnavailableError(
            "the registry database is busy (another process holds its lock); nothing was "
            "changed, retry shortly",
            {"database": "registry", "retry_after_s": RETRY_AFTER_S},
        )
    return UnavailableError(
        "the registry database cannot be reached right now; retry shortly "
        "(the server's log says why)",
        {"database": "registry", "retry_after_s": RETRY_AFTER_S},
    )
