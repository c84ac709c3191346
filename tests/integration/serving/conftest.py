"""A real server on loopback, in-process, over a SQLite registry in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from maas.config import Settings
from maas.registry import Registry
from maas.store import LocalStore
from maas.testing.server import running_server


@pytest.fixture
def local_registry(tmp_path: Path) -> Iterator[Registry]:
    registry = Registry(f"sqlite:///{tmp_path}/maas.db", LocalStore(tmp_path / "artifacts"))
    registry.upgrade()
    try:
        yield registry
    finally:
        registry.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, refresh_interval_s=0.1, max_request_size_bytes=1024 * 1024)


@pytest.fixture
def client(settings: Settings, local_registry: Registry) -> Iterator[httpx.Client]:
    with (
        running_server(settings, local_registry) as url,
        httpx.Client(base_url=url, timeout=30) as c,
    ):
        yield c
