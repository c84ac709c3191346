"""Sessions that commit or roll back as a unit, with database failures turned into maas errors.

A user can provoke a constraint violation (two writers racing) or a timeout (the database
busy or gone); those become ``ConflictError`` and ``UnavailableError``. Anything else is a
bug and propagates as is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc
from sqlalchemy.orm import Session, sessionmaker

from maas.errors import ConflictError, UnavailableError

__all__ = ["transaction"]


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
    except exc.OperationalError as error:
        raise UnavailableError(f"the registry database is unavailable: {error.orig}") from error
