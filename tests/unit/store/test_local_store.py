from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from maas.errors import IntegrityError, InvalidInputError, NotFoundError
from maas.store import ArtifactStore, LocalStore, StoredArtifact

DATA = b"fake onnx"
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "artifacts")


def _all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_local_store_satisfies_the_protocol(store: LocalStore) -> None:
    assert isinstance(store, ArtifactStore)


def test_put_bytes_round_trip(store: LocalStore) -> None:
    stored = store.put_bytes(DATA)
    assert stored == StoredArtifact(SHA, len(DATA))
    assert store.exists(SHA)
    assert store.read_bytes(SHA) == DATA
    path = store.path(SHA)
    assert path == store.root / "sha256" / SHA[:2] / SHA
    assert path.read_bytes() == DATA


def test_put_file_streams_large_files(store: LocalStore, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # more than one chunk, not a multiple of it
    source = tmp_path / "model.onnx"
    source.write_bytes(data)
    stored = store.put_file(source)
    assert stored == StoredArtifact(hashlib.sha256(data).hexdigest(), len(data))
    assert store.read_bytes(stored.sha256) == data


def test_put_is_idempotent(store: LocalStore) -> None:
    assert store.put_bytes(DATA) == store.put_bytes(DATA)
    assert _all_files(store.root) == [store.path(SHA)]


def test_stored_files_are_read_only(store: LocalStore) -> None:
    store.put_bytes(DATA)
    assert stat.S_IMODE(store.path(SHA).stat().st_mode) == 0o444


def test_no_temporary_files_are_left(store: LocalStore, tmp_path: Path) -> None:
    store.put_bytes(DATA)
    store.put_bytes(DATA)
    source = tmp_path / "other.bin"
    source.write_bytes(b"other")
    store.put_file(source)
    names = [p.name for p in _all_files(store.root)]
    assert sorted(names) == sorted([SHA, hashlib.sha256(b"other").hexdigest()])


def test_failed_put_leaves_no_temporary_file(store: LocalStore, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        store.put_file(tmp_path / "missing.onnx")
    with pytest.raises(IsADirectoryError):
        store.put_file(tmp_path)
    assert _all_files(store.root) == []


def _corrupt(path: Path) -> None:
    path.chmod(0o644)
    path.write_bytes(b"tampered")


def test_corruption_is_detected_on_read(store: LocalStore) -> None:
    store.put_bytes(DATA)
    _corrupt(store.root / "sha256" / SHA[:2] / SHA)
    with pytest.raises(IntegrityError) as info:
        store.path(SHA)
    assert info.value.details["sha256"] == SHA
    with pytest.raises(IntegrityError):
        store.read_bytes(SHA)


def test_putting_the_content_again_repairs_a_corrupted_file(store: LocalStore) -> None:
    store.put_bytes(DATA)
    _corrupt(store.root / "sha256" / SHA[:2] / SHA)
    store.put_bytes(DATA)
    assert store.read_bytes(SHA) == DATA


def test_missing_artifact_is_not_found(store: LocalStore) -> None:
    assert not store.exists(SHA)
    with pytest.raises(NotFoundError):
        store.path(SHA)
    with pytest.raises(NotFoundError):
        store.read_bytes(SHA)


def test_delete_is_silent_when_absent(store: LocalStore) -> None:
    store.put_bytes(DATA)
    store.delete(SHA)
    assert not store.exists(SHA)
    store.delete(SHA)


@pytest.mark.parametrize(
    "digest",
    ["", "abc", SHA.upper(), SHA[:-1] + "g", SHA + "0", "../" + SHA[3:], "../../etc/passwd"],
)
def test_bad_digests_are_refused(store: LocalStore, digest: str) -> None:
    for call in (store.path, store.read_bytes, store.exists, store.delete):
        with pytest.raises(InvalidInputError):
            call(digest)
