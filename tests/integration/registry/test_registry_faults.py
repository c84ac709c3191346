"""The registry when its database is locked or away: WAL, a bounded wait, a clear error."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from maas.config import Settings
from maas.errors import UnavailableError
from maas.protocol.signature import Signature
from maas.registry import Registry
from maas.registry.engine import TOOL_BUSY_TIMEOUT_S
from maas.store import LocalStore


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "maas.db"


@pytest.fixture
def quick(sqlite_path: Path, tmp_path: Path) -> Iterator[Registry]:
    """A migrated SQLite registry whose statements wait at most 0.3 s for a lock."""
    registry = Registry(
        f"sqlite:///{sqlite_path}", LocalStore(tmp_path / "artifacts"), busy_timeout_s=0.3
    )
    registry.upgrade()
    try:
        yield registry
    finally:
        registry.close()


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Another process's connection holding the database's write lock."""
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        yield
        other.execute("ROLLBACK")
    finally:
        other.close()


def _journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


def test_sqlite_runs_in_wal_mode(quick: Registry, sqlite_path: Path) -> None:
    assert _journal_mode(sqlite_path) == "wal"


def test_a_locked_database_is_unavailable_within_the_bound_and_reads_go_on(
    quick: Registry,
    sqlite_path: Path,
    tmp_path: Path,
    make_artifact: Callable[..., Path],
    signature: Signature,
) -> None:
    quick.register_version("m", make_artifact(b"v1"), artifact_format="onnx", signature=signature)
    with locked(sqlite_path):
        started = time.monotonic()
        with pytest.raises(UnavailableError) as raised:
            quick.set_gate("m", [{"metric": "accuracy", "min": 0.5}], actor="t")
        assert time.monotonic() - started < 2.0
        error = raised.value
        assert error.code == "unavailable"
        assert "registry database" in error.message
        assert str(tmp_path) not in error.message and "maas.db" not in error.message
        assert error.details == {"database": "registry", "retry_after_s": 1}

        started = time.monotonic()
        with pytest.raises(UnavailableError):
            quick.register_version(
                "m", make_artifact(b"v2"), artifact_format="onnx", signature=signature
            )
        assert time.monotonic() - started < 3.0
        # WAL: readers do not wait for the writer holding the lock.
        assert [v.version for v in quick.list_versions("m")] == [1]
        assert quick.change_token()[1] == 1
    # Nothing half-made, and the same call works once the lock is gone.
    assert quick.get_gate("m") == []
    assert [v.version for v in quick.list_versions("m")] == [1]
    quick.set_gate("m", [{"metric": "accuracy", "min": 0.5}], actor="t")
    assert len(quick.get_gate("m")) == 1


def test_a_gone_database_folder_is_unavailable_not_internal(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    registry = Registry(
        f"sqlite:///{folder}/maas.db", LocalStore(tmp_path / "artifacts"), busy_timeout_s=0.3
    )
    try:
        registry.upgrade()
        registry.close()  # the pool's connections go: the next one must open the file
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
        folder.write_text("not a folder any more")
        with pytest.raises(UnavailableError) as raised:
            registry.list_models()
        assert "registry database" in raised.value.message
        assert str(tmp_path) not in raised.value.message
    finally:
        registry.close()


def test_tools_wait_long_and_the_server_briefly(tmp_path: Path) -> None:
    """Job workers and the CLI keep the long wait whatever the server's bound is."""
    settings = Settings(home=tmp_path, db_busy_timeout_s=0.3)
    for server, expected_ms in ((True, 300), (False, int(TOOL_BUSY_TIMEOUT_S * 1000))):
        registry = Registry.from_settings(settings, server=server)
        try:
            with registry._engine.connect() as conn:  # the pragma each connection got
                got = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
            assert got == expected_ms
            assert registry.uploads_dir == (tmp_path / "tmp" / "uploads").absolute()
        finally:
            registry.close()


def test_a_tool_writer_waits_out_a_short_lock(
    sqlite_path: Path, tmp_path: Path, make_artifact: Callable[..., Path], signature: Signature
) -> None:
    """A writer with the tools' long wait (a job worker's progress) is not failed by a
    lock held a moment longer than the server's bound."""
    patient = Registry(f"sqlite:///{sqlite_path}", LocalStore(tmp_path / "artifacts"))
    patient.upgrade()
    try:
        other = sqlite3.connect(sqlite_path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN EXCLUSIVE")
        release = threading.Timer(1.5, lambda: other.execute("ROLLBACK"))
        release.start()
        try:
            version = patient.register_version(
                "m", make_artifact(), artifact_format="onnx", signature=signature
            )
        finally:
            release.join()
            other.close()
        assert version.version == 1
    finally:
        patient.close()
