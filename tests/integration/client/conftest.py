"""The SDK against a real server on loopback, in-process, over a SQLite registry in tmp_path.

The server runs no training jobs (``job_concurrency=0``): jobs stay queued, so the job
calls can be checked without training anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from maas.client import Client
from maas.config import Settings
from maas.registry import Registry
from maas.store import LocalStore
from maas.testing.models import write_linear_model
from maas.testing.server import running_server


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    opened = Registry(f"sqlite:///{tmp_path}/maas.db", LocalStore(tmp_path / "artifacts"))
    opened.upgrade()
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        home=tmp_path,
        refresh_interval_s=0.1,
        max_request_size_bytes=4 * 1024 * 1024,
        job_concurrency=0,
    )


@pytest.fixture
def server(settings: Settings, registry: Registry) -> Iterator[str]:
    with running_server(settings, registry) as url:
        yield url


@pytest.fixture
def client(server: str) -> Iterator[Client]:
    with Client(server, timeout_s=60) as opened:
        yield opened


@pytest.fixture
def linear(tmp_path: Path) -> Path:
    """FP32 [-1, 4] -> [-1, 3] ``logits``."""
    return write_linear_model(tmp_path / "linear.onnx", seed=0)


@pytest.fixture
def linear_b(tmp_path: Path) -> Path:
    """The same signature, other weights."""
    return write_linear_model(tmp_path / "linear-b.onnx", seed=1)
