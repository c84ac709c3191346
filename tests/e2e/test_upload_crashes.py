"""``kill -9`` a real ``maas serve`` at several points of slow streaming uploads, restart it:
nothing half-registered, no temporary file left after the start-up collection, and a
retry with the same Idempotency-Key makes one version, not two."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from maas.registry import Registry
from maas.store import LocalStore
from maas.store.scratch import scratch_prefix
from maas.testing.models import write_linear_model
from maas.testing.processes import serve_process

pytestmark = pytest.mark.e2e

#: When each server is killed: a time after the upload began (while the body streams in),
#: or the moment the body is in the upload folder (being loaded, stored), or the moment
#: its version row is committed (the reply may not have left yet).
KILL_POINTS: tuple[float | str, ...] = (0.0, 0.05, 0.2, 0.5, "body received", "committed")
CHUNK_BYTES = 128 * 1024
PAUSE_S = 0.01  # 4 MiB in 32 chunks: about 0.35 s of body, then load, store, commit


def _slow(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), CHUNK_BYTES):
        time.sleep(PAUSE_S)
        yield data[start : start + CHUNK_BYTES]


def _post(url: str, data: bytes, key: str, *, slow: bool = False) -> httpx.Response:
    return httpx.post(
        f"{url}/api/models/big/versions",
        content=_slow(data) if slow else data,
        headers={"Content-Type": "application/octet-stream", "Idempotency-Key": key},
        timeout=30,
    )


def _upload_until_killed(url: str, data: bytes, key: str) -> threading.Thread:
    def run() -> None:
        # The server dies under it: the reply is lost, as a client sees it.
        with contextlib.suppress(httpx.TransportError):
            _post(url, data, key, slow=True)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _temp_files(home: Path) -> list[Path]:
    """What the upload folder and the store's temporary folder hold."""
    folders = (home / "tmp" / "uploads", home / "artifacts" / "tmp")
    return sorted(p for f in folders if f.exists() for p in f.iterdir())


def _wait_collected(home: Path, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while _temp_files(home) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _temp_files(home) == [], "the start-up collection left temporary files"


def _check_every_version_is_whole(home: Path) -> int:
    """Each recorded version's artifact is in the store and hashes to its name."""
    registry = Registry(f"sqlite:///{home}/maas.db", LocalStore(home / "artifacts"))
    try:
        names = [m.name for m in registry.list_models()]
        versions = [v for n in names for v in registry.list_versions(n)]
        for version in versions:
            assert registry.artifact_path(version).stat().st_size == version.size_bytes
        return len(versions)
    finally:
        registry.close()


def _versions_recorded(home: Path) -> int:
    with sqlite3.connect(home / "maas.db") as conn:  # a WAL reader: never waits
        try:
            return int(conn.execute("SELECT count(*) FROM model_versions").fetchone()[0])
        except sqlite3.OperationalError:  # not migrated yet
            return 0


def _wait_for(point: float | str, home: Path, versions_before: int) -> None:
    if isinstance(point, float):
        time.sleep(point)
        return
    deadline = time.monotonic() + 20
    uploads = home / "tmp" / "uploads"
    while time.monotonic() < deadline:
        if point == "body received" and uploads.exists() and any(uploads.iterdir()):
            return
        if point == "committed" and _versions_recorded(home) > versions_before:
            return
        time.sleep(0.001)
    raise AssertionError(f"the upload never reached {point!r}")


def _leftover_of(pid: int, home: Path) -> Path:
    """A temporary upload file as the killed server ``pid`` would have left it."""
    uploads = home / "tmp" / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    name = scratch_prefix("upload").replace(f"-{os.getpid()}-", f"-{pid}-") + "killed"
    leftover = uploads / name
    leftover.write_bytes(b"\0" * 1024)
    return leftover


def test_kill_9_during_uploads_leaves_nothing_half_done(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    data = write_linear_model(tmp_path / "big.onnx", in_features=1024, out_features=1024)
    body = data.read_bytes()
    assert len(body) > 4_000_000
    keys: list[str] = []
    committed: str | None = None  # the key whose version was made before its kill
    started = time.monotonic()
    with open(tmp_path / "server.log", "wb") as log:
        for number, point in enumerate(KILL_POINTS):
            with serve_process(home, output=log) as server:
                _wait_collected(home)
                versions_before = _check_every_version_is_whole(home)
                key = f"upload-{number}"
                keys.append(key)
                upload = _upload_until_killed(server.url, body, key)
                _wait_for(point, home, versions_before)
                os.kill(server.pid, signal.SIGKILL)
                upload.join(timeout=30)
                assert not upload.is_alive()
            if point == "body received":  # killed while loading it: its file stayed behind
                assert _temp_files(home) != []
            planted = _leftover_of(server.pid, home)
            committed = key if point == "committed" else committed

        with serve_process(home, output=log) as server:
            _wait_collected(home)
            assert not planted.exists()
            before = _check_every_version_is_whole(home)
            assert before <= len(keys)
            made: dict[str, int] = {}
            for key in keys:
                first = _post(server.url, body, key)
                assert first.status_code in (200, 201), first.text
                if key == committed:  # the reply was lost, the version was made
                    assert first.status_code == 200, first.text
                again = _post(server.url, body, key)
                assert again.status_code == 200, again.text
                assert again.json()["version"] == first.json()["version"]
                made[key] = first.json()["version"]
            listed = httpx.get(f"{server.url}/api/models/big/versions", timeout=10).json()
    assert len(set(made.values())) == len(keys)  # one version per key, not two
    assert sorted(v["version"] for v in listed) == sorted(made.values())
    assert _check_every_version_is_whole(home) == len(keys)
    assert time.monotonic() - started < 90
