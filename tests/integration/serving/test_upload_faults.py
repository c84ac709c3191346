"""Uploads and management calls when things go wrong: retries, a locked registry
database, a full disk. A real server on loopback, real SQLite, real tmpfs."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from maas.config import Settings
from maas.registry import Registry
from maas.store import LocalStore
from maas.testing.disks import DiskUnavailableError, small_disk
from maas.testing.models import write_linear_model
from maas.testing.server import running_server

MIB = 1024 * 1024
ROW = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [1] * 4}]}


def _upload(
    client: httpx.Client, data: bytes, key: str | None = None, name: str = "lin"
) -> httpx.Response:
    headers = {"Content-Type": "application/octet-stream"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(f"/api/models/{name}/versions", content=data, headers=headers)


def _leftovers(*folders: Path) -> list[Path]:
    return sorted(p for f in folders if f.exists() for p in f.rglob("*") if p.is_file())


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def settings(home: Path) -> Settings:
    return Settings(
        home=home,
        refresh_interval_s=0.1,
        max_request_size_bytes=16 * MIB,
        db_busy_timeout_s=0.5,
        job_concurrency=0,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[httpx.Client]:
    """A server whose registry is its own (``Registry.from_settings(server=True)``)."""
    with running_server(settings) as url, httpx.Client(base_url=url, timeout=30) as c:
        yield c


def test_a_retry_with_the_same_key_gets_the_first_version_with_200(
    client: httpx.Client, tmp_path: Path
) -> None:
    data = write_linear_model(tmp_path / "m.onnx").read_bytes()
    first = _upload(client, data, key="k-1")
    assert first.status_code == 201, first.text
    again = _upload(client, data, key="k-1")
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    other = _upload(client, write_linear_model(tmp_path / "b.onnx", seed=1).read_bytes(), "k-1")
    assert other.status_code == 409
    assert other.json()["code"] == "conflict"
    assert other.json()["details"] == {"model": "lin", "field": "Idempotency-Key"}
    assert _upload(client, data, key="k-2").status_code == 201  # a new key: a new version
    assert [v["version"] for v in client.get("/api/models/lin/versions").json()] == [1, 2]
    bad = _upload(client, data, key="has a space")
    assert bad.status_code == 400 and bad.json()["details"] == {"field": "Idempotency-Key"}


def test_the_same_bytes_without_a_key_are_one_version_within_the_window(
    client: httpx.Client, tmp_path: Path
) -> None:
    data = write_linear_model(tmp_path / "m.onnx").read_bytes()
    assert _upload(client, data).status_code == 201
    retry = _upload(client, data)
    assert retry.status_code == 200 and retry.json()["version"] == 1
    assert [v["version"] for v in client.get("/api/models/lin/versions").json()] == [1]
    events = client.get("/api/audit", params={"model": "lin"}).json()
    assert [e["action"] for e in events] == ["version.create", "model.create"]


def test_a_retry_reaching_another_server_on_the_registry_gets_the_same_version(
    settings: Settings, tmp_path: Path
) -> None:
    data = write_linear_model(tmp_path / "m.onnx").read_bytes()
    with running_server(settings) as one, running_server(settings) as other:
        first = httpx.post(
            f"{one}/api/models/lin/versions",
            content=data,
            headers={"Idempotency-Key": "k"},
            timeout=30,
        )
        second = httpx.post(
            f"{other}/api/models/lin/versions",
            content=data,
            headers={"Idempotency-Key": "k"},
            timeout=30,
        )
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["version"] == second.json()["version"] == 1


def test_a_locked_registry_answers_503_quickly_while_inference_goes_on(
    client: httpx.Client, home: Path, tmp_path: Path
) -> None:
    data = write_linear_model(tmp_path / "m.onnx").read_bytes()
    assert _upload(client, data).status_code == 201
    assert client.post("/v2/models/lin/infer", json=ROW).status_code == 200
    other = sqlite3.connect(home / "maas.db", isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        alias = client.put("/api/models/lin/aliases/production", json={"version": 1})
        upload = _upload(client, write_linear_model(tmp_path / "b.onnx", seed=1).read_bytes())
        elapsed_s = time.monotonic() - started
        for reply in (alias, upload):
            assert reply.status_code == 503, reply.text
            body = reply.json()
            assert body["code"] == "unavailable"
            assert "registry database" in body["error"]
            assert str(home) not in reply.text and "Traceback" not in reply.text
            assert reply.headers["Retry-After"] == "1"
        assert elapsed_s < 4.0  # two calls, each bounded by MAAS_DB_BUSY_TIMEOUT_S
        # Reads (WAL) and inference (never touches the database) are answered meanwhile.
        assert client.get("/api/models/lin").status_code == 200
        for _ in range(20):
            infer = client.post("/v2/models/lin/infer", json=ROW, timeout=5)
            assert infer.status_code == 200 and infer.json()["model_version"] == "1"
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert client.put("/api/models/lin/aliases/production", json={"version": 1}).is_success
    assert [v["version"] for v in client.get("/api/models/lin/versions").json()] == [1]


@pytest.fixture
def small(tmp_path: Path) -> Iterator[Path]:
    try:
        with small_disk(tmp_path / "small", 2 * MIB) as folder:
            yield folder
    except DiskUnavailableError as exc:
        pytest.skip(f"needs a small real file system: {exc}")


def _big_model(tmp_path: Path) -> bytes:
    """A 4 MiB ONNX model: more than the small disk holds."""
    return write_linear_model(
        tmp_path / "big.onnx", in_features=1024, out_features=1024
    ).read_bytes()


def test_a_full_artifact_store_is_507_and_registers_nothing(
    small: Path, home: Path, tmp_path: Path
) -> None:
    settings = Settings(home=home, artifacts_dir=small, max_request_size_bytes=16 * MIB)
    with running_server(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        reply = _upload(client, _big_model(tmp_path), key="k")
        assert reply.status_code == 507, reply.text
        assert reply.json()["code"] == "insufficient_storage"
        assert reply.json()["details"] == {"storage": "artifact store"}
        assert str(small) not in reply.text and str(home) not in reply.text
        assert client.get("/api/models").json() == []
        assert _leftovers(small, home / "tmp") == []
        small_one = write_linear_model(tmp_path / "m.onnx").read_bytes()
        assert _upload(client, small_one, key="k").status_code == 201  # nothing was kept


def test_a_full_upload_folder_is_507_and_leaves_no_temp_file(small: Path, tmp_path: Path) -> None:
    settings = Settings(
        home=small,
        database_url=f"sqlite:///{tmp_path}/maas.db",
        artifacts_dir=tmp_path / "artifacts",
        max_request_size_bytes=16 * MIB,
    )
    with running_server(settings) as url, httpx.Client(base_url=url, timeout=30) as client:
        reply = _upload(client, _big_model(tmp_path))
        assert reply.status_code == 507, reply.text
        assert reply.json()["details"] == {"storage": "upload folder"}
        assert client.get("/api/models").json() == []
        assert _leftovers(small / "tmp", tmp_path / "artifacts") == []


def test_the_upload_route_documents_retries_and_507(client: httpx.Client) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/api/models/{name}/versions"]["post"]
    assert {"200", "201", "409", "507"} <= set(operation["responses"])
    assert "10 minutes" in operation["description"] and "24 hours" in operation["description"]
    headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    assert "Idempotency-Key" in headers


def test_an_existing_registry_uses_the_upload_folder_under_home(
    settings: Settings, home: Path
) -> None:
    registry = Registry.from_settings(settings, server=True)
    try:
        assert registry.uploads_dir == (home / "tmp" / "uploads").absolute()
        assert isinstance(registry.store, LocalStore)
    finally:
        registry.close()
