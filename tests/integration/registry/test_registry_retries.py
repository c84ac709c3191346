"""A retried upload gets the version its first copy made; leftovers of killed uploads go."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, text

from maas.errors import ConflictError, InvalidInputError
from maas.protocol.signature import Signature
from maas.registry import Registry
from maas.registry.engine import create_registry_engine
from maas.registry.idempotency import KEY_WINDOW_S, SAME_BYTES_WINDOW_S, UploadRequest
from maas.registry.tables import UTCDateTime, utc_now
from maas.store import LocalStore
from maas.store.scratch import scratch_prefix

ArtifactFactory = Callable[..., Path]


def _request(
    data: bytes,
    key: str | None = None,
    *,
    config: dict[str, Any] | None = None,
    description: str = "",
    same_bytes_window_s: float = SAME_BYTES_WINDOW_S,
) -> UploadRequest:
    return UploadRequest.of(
        hashlib.sha256(data).hexdigest(),
        artifact_format="onnx",
        config=config,
        description=description,
        key=key,
        same_bytes_window_s=same_bytes_window_s,
    )


def _register(
    registry: Registry,
    make_artifact: ArtifactFactory,
    signature: Signature,
    data: bytes,
    request: UploadRequest | None,
    name: str = "m",
) -> int:
    return registry.register_version(
        name, make_artifact(data), artifact_format="onnx", signature=signature, request=request
    ).version


def test_the_same_key_gives_back_the_first_version(
    registry: Registry, make_artifact: ArtifactFactory, signature: Signature
) -> None:
    first = _register(registry, make_artifact, signature, b"a", _request(b"a", "k1"))
    assert registry.find_upload("m", _request(b"a", "k1")) is not None
    again = _register(registry, make_artifact, signature, b"a", _request(b"a", "k1"))
    assert first == again == 1
    assert [v.version for v in registry.list_versions("m")] == [1]
    assert [e.action for e in registry.audit_log()].count("version.create") == 1
    # A new key is a new request, even for the same bytes.
    assert _register(registry, make_artifact, signature, b"a", _request(b"a", "k2")) == 2
    # The key belongs to the model: the same key on another model is its own request.
    assert _register(registry, make_artifact, signature, b"a", _request(b"a", "k1"), "n") == 1


def test_the_same_key_with_other_bytes_or_options_is_a_conflict(
    registry: Registry, make_artifact: ArtifactFactory, signature: Signature
) -> None:
    _register(registry, make_artifact, signature, b"a", _request(b"a", "k"))
    for other in (_request(b"b", "k"), _request(b"a", "k", config={"warmup": {"enabled": False}})):
        with pytest.raises(ConflictError) as raised:
            registry.find_upload("m", other)
        assert raised.value.details == {"model": "m", "field": "Idempotency-Key"}
        with pytest.raises(ConflictError):
            _register(registry, make_artifact, signature, b"b", other)
    assert [v.version for v in registry.list_versions("m")] == [1]


def test_without_a_key_the_same_bytes_within_the_window_are_one_version(
    registry: Registry, make_artifact: ArtifactFactory, signature: Signature
) -> None:
    assert _register(registry, make_artifact, signature, b"a", _request(b"a")) == 1
    assert _register(registry, make_artifact, signature, b"a", _request(b"a")) == 1
    assert _register(registry, make_artifact, signature, b"b", _request(b"b")) == 2
    other_options = _request(b"a", description="another")
    assert _register(registry, make_artifact, signature, b"a", other_options) == 3
    # No window: the same bytes again are a new version, as are registrations without one.
    no_window = _request(b"a", same_bytes_window_s=0)
    assert _register(registry, make_artifact, signature, b"a", no_window) == 4
    assert _register(registry, make_artifact, signature, b"a", None) == 5
    # A keyless retry gets the newest version those bytes made that is still in service.
    assert _register(registry, make_artifact, signature, b"a", _request(b"a")) == 4
    registry.archive_version("m", 4, actor="t")
    assert _register(registry, make_artifact, signature, b"a", _request(b"a")) == 1
    registry.archive_version("m", 1, actor="t")
    assert _register(registry, make_artifact, signature, b"a", _request(b"a")) == 6


def test_requests_past_their_window_are_new_uploads_and_get_pruned(
    registry: Registry, make_artifact: ArtifactFactory, signature: Signature, database_url: str
) -> None:
    _register(registry, make_artifact, signature, b"a", _request(b"a", "k"))
    _register(registry, make_artifact, signature, b"b", _request(b"b"))
    engine = create_registry_engine(database_url)
    try:
        with engine.begin() as conn:
            long_ago = utc_now() - timedelta(seconds=KEY_WINDOW_S + 60)
            update = text("UPDATE upload_requests SET created_at = :t").bindparams(
                bindparam("t", type_=UTCDateTime())
            )
            conn.execute(update, {"t": long_ago})
    finally:
        engine.dispose()
    assert registry.find_upload("m", _request(b"a", "k")) is None
    assert registry.find_upload("m", _request(b"b")) is None
    assert _register(registry, make_artifact, signature, b"a", _request(b"a", "k")) == 3
    assert registry.collect_garbage().requests == 1  # b's; a's key was renewed with v3
    assert registry.find_upload("m", _request(b"a", "k")) is not None


def test_copies_of_one_request_racing_make_one_version(
    database_url: str, make_artifact: ArtifactFactory, signature: Signature, tmp_path: Path
) -> None:
    """Like a client's retry reaching another server while the first copy still runs."""
    registries = [Registry(database_url, LocalStore(tmp_path / "artifacts")) for _ in range(4)]
    try:
        registries[0].upgrade()
        paths = [make_artifact(b"same bytes") for _ in range(8)]
        with ThreadPoolExecutor(8) as pool:
            numbers = set(
                pool.map(
                    lambda i: (
                        registries[i % 4]
                        .register_version(
                            "race",
                            paths[i],
                            artifact_format="onnx",
                            signature=signature,
                            request=_request(b"same bytes", "one-key"),
                        )
                        .version
                    ),
                    range(8),
                )
            )
        assert numbers == {1}
        assert [v.version for v in registries[0].list_versions("race")] == [1]
    finally:
        for registry in registries:
            registry.close()


def test_a_key_must_be_visible_ascii() -> None:
    for key in ("", "x" * 256, "has space", "é"):
        with pytest.raises(InvalidInputError) as raised:
            _request(b"a", key)
        assert raised.value.details == {"field": "Idempotency-Key"}
    assert _request(b"a", "x" * 255).key == "x" * 255


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_collection_takes_leftovers_of_gone_processes_and_orphans_only(
    database_url: str, make_artifact: ArtifactFactory, signature: Signature, tmp_path: Path
) -> None:
    uploads = tmp_path / "home" / "tmp" / "uploads"
    store = LocalStore(tmp_path / "artifacts")
    registry = Registry(database_url, store, uploads_dir=uploads)
    try:
        registry.upgrade()
        kept = registry.register_version(
            "m", make_artifact(b"kept"), artifact_format="onnx", signature=signature
        )
        _age(store.root / "sha256" / kept.artifact_sha256[:2] / kept.artifact_sha256, 7200)
        old_orphan = store.put_bytes(b"an upload killed before its commit")
        _age(store.path(old_orphan.sha256), 7200)
        young_orphan = store.put_bytes(b"an upload committing right now")

        uploads.mkdir(parents=True)
        dead = scratch_prefix("upload").replace(f"-{os.getpid()}-", f"-{_dead_pid()}-")
        (uploads / f"{dead}abc").write_bytes(b"x" * 100)
        (uploads / f"{dead}dir").mkdir()
        (uploads / f"{dead}dir" / "model.onnx").write_bytes(b"y" * 10)
        mine = uploads / f"{scratch_prefix('upload')}live"
        mine.write_bytes(b"in flight")
        stale = uploads / f"{scratch_prefix('upload')}stale"
        stale.write_bytes(b"z")
        _age(stale, 7200)
        foreign = uploads / "notes.txt"  # not ours: never touched
        foreign.write_text("keep")
        (store.root / "tmp").mkdir(exist_ok=True)
        incoming = store.root / "tmp" / f"{dead.replace('upload', '.incoming')}q"
        incoming.write_bytes(b"half an artifact")

        collected = registry.collect_garbage()

        assert sorted(p.name for p in uploads.iterdir()) == sorted([mine.name, foreign.name])
        assert not incoming.exists()
        assert collected.temp_files == 4
        assert collected.orphans == 1 and collected.orphan_bytes == old_orphan.size_bytes
        assert not store.exists(old_orphan.sha256)
        assert store.exists(young_orphan.sha256)
        assert store.path(kept.artifact_sha256)  # in service: kept however old
    finally:
        registry.close()


def test_putting_existing_bytes_again_makes_them_young(tmp_path: Path) -> None:
    """So an orphan that a registration is about to record is not collected under it."""
    store = LocalStore(tmp_path / "artifacts")
    put = store.put_bytes(b"bytes")
    _age(store.path(put.sha256), 7200)
    store.put_bytes(b"bytes")
    [(listed, modified)] = list(store.stored())
    assert listed == put and time.time() - modified < 60
