"""Shared fixtures: a registry database on real SQLite and real PostgreSQL.

PostgreSQL tests run in a fresh schema each (``search_path`` set through the URL), so
they are isolated from each other and from anything else in the database.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from maas.registry import Registry
from maas.store import LocalStore

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _unreachable(base_url: str, exc: Exception) -> NoReturn:
    """Skip, or fail where CI demands PostgreSQL (MAAS_TEST_REQUIRE_POSTGRES=1)."""
    reason = f"PostgreSQL not reachable at {base_url}: {exc}"
    if os.environ.get("MAAS_TEST_REQUIRE_POSTGRES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def _postgres_schema_url(base_url: str) -> Iterator[str]:
    """Create a throwaway schema, yield a URL whose connections use it, then drop it."""
    schema = f"maas_test_{secrets.token_hex(6)}"
    try:
        admin = create_engine(base_url, connect_args={"connect_timeout": 3})
    except Exception as exc:  # e.g. the driver is missing
        _unreachable(base_url, exc)
    try:
        try:
            with admin.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        except Exception as exc:
            _unreachable(base_url, exc)
        separator = "&" if "?" in base_url else "?"
        yield f"{base_url}{separator}options={quote(f'-csearch_path={schema}', safe='')}"
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/maas.db"
        return
    base_url = os.environ.get("MAAS_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    make_url(base_url)  # a malformed URL is a configuration error, not a skip
    yield from _postgres_schema_url(base_url)


@pytest.fixture
def registry(database_url: str, tmp_path: Path) -> Iterator[Registry]:
    """A migrated registry whose artifacts live in ``tmp_path/artifacts``."""
    registry = Registry(database_url, LocalStore(tmp_path / "artifacts"))
    try:
        registry.upgrade()
        yield registry
    finally:
        registry.close()
