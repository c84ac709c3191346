"""``LocalStore`` on a full disk (a real 2 MiB tmpfs), and its sweep of temporary files."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from maas.errors import InsufficientStorageError
from maas.store import LocalStore
from maas.store.base import SweepableStore
from maas.store.scratch import process_alive, scratch_prefix
from maas.testing.disks import DiskUnavailableError, small_disk


@pytest.fixture
def small(tmp_path: Path) -> Iterator[Path]:
    try:
        with small_disk(tmp_path / "small", 2 * 1024 * 1024) as folder:
            yield folder
    except DiskUnavailableError as exc:
        pytest.skip(f"needs a small real file system: {exc}")


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_a_full_disk_is_insufficient_storage_and_leaves_no_temp_file(small: Path) -> None:
    store = LocalStore(small / "artifacts")
    kept = store.put_bytes(b"small enough")
    with pytest.raises(InsufficientStorageError) as raised:
        store.put_bytes(os.urandom(3 * 1024 * 1024))
    error = raised.value
    assert error.code == "insufficient_storage"
    assert error.details == {"storage": "artifact store"}
    assert str(small) not in error.message
    assert _files(store.root) == [store.path(kept.sha256)]  # no temp file, no partial blob
    assert store.read_bytes(kept.sha256) == b"small enough"


def test_local_store_is_sweepable(tmp_path: Path) -> None:
    assert isinstance(LocalStore(tmp_path), SweepableStore)


def test_sweep_takes_a_gone_writers_temp_files_and_old_ones(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "artifacts")
    incoming = store.root / "tmp"
    incoming.mkdir(parents=True)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not process_alive(child.pid) and process_alive(os.getpid())
    mine = scratch_prefix(".incoming")
    gone = incoming / (mine.replace(f"-{os.getpid()}-", f"-{child.pid}-") + "a")
    gone.write_bytes(b"x" * 10)
    live = incoming / f"{mine}b"
    live.write_bytes(b"y")
    old_style = incoming / ".incoming-abcdef"  # before names carried their writer
    old_style.write_bytes(b"z")
    then = time.time() - 7200
    os.utime(old_style, (then, then))

    swept = store.sweep_temp(3600)

    assert swept.entries == 2 and swept.size_bytes == 11
    assert sorted(p.name for p in incoming.iterdir()) == [live.name]
    assert store.sweep_temp(0).entries == 1  # old enough: whoever wrote it
