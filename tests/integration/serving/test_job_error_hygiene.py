"""A job submitted over HTTP is refused in words that name the field: never the server's
folders, a traceback, or the content of the file the job was pointed at."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from maas.config import Settings
from maas.registry import Registry
from maas.testing.server import running_server

_FACTORIES = "hygiene_factories"
_SECRET = "SECRET_LINE_IN_FILE"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "allowed-data-folder"
    folder.mkdir()
    return folder


@pytest.fixture
def client(
    tmp_path: Path,
    data_dir: Path,
    local_registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[httpx.Client]:
    package = tmp_path / "code"
    package.mkdir()
    # Importing the factory raises what no check expects, with a server path in its words.
    (package / f"{_FACTORIES}.py").write_text(
        "def __getattr__(name):\n"
        f"    raise RuntimeError('cannot read {tmp_path}/private/weights.bin')\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("PYTHONPATH", str(package))  # the validator child process imports it
    settings = Settings(
        home=tmp_path / "home",
        refresh_interval_s=0.1,
        job_concurrency=0,
        job_data_dirs=[data_dir],
        job_factory_modules=[_FACTORIES],
    )
    with running_server(settings, local_registry) as url, httpx.Client(base_url=url) as c:
        yield c


def _refused(client: httpx.Client, spec: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    reply = client.post("/api/jobs", json=spec, timeout=120)
    assert reply.status_code == 400, reply.text
    body: dict[str, Any] = reply.json()
    assert body["code"] == "invalid_input"
    for leak in ("Traceback", 'File "', "RuntimeError", _SECRET, str(tmp_path / "home")):
        assert leak not in reply.text, (leak, reply.text)
    assert client.get("/api/jobs").json() == []  # nothing queued
    return body


def _csv_spec(path: Path, model: str = "mlp") -> dict[str, Any]:
    return {
        "model": {"name": model},
        "dataset": {"kind": "csv", "path": str(path), "label_column": "label"},
    }


def test_a_dataset_outside_the_data_folders_is_refused_without_naming_them(
    client: httpx.Client, tmp_path: Path, data_dir: Path
) -> None:
    body = _refused(client, _csv_spec(tmp_path / "elsewhere.csv"), tmp_path)
    assert body["details"] == {"field": "dataset.path"}
    assert "MAAS_JOB_DATA_DIRS" in body["error"]
    assert data_dir.name not in str(body)


def test_a_csv_in_the_data_folder_is_never_echoed(
    client: httpx.Client, tmp_path: Path, data_dir: Path
) -> None:
    (data_dir / "d.csv").write_text(f"a,label\n1,x\n{_SECRET},y\n", encoding="utf-8")
    body = _refused(client, _csv_spec(data_dir / "d.csv"), tmp_path)
    assert body["error"] == "dataset.path: row 3, column 1 is not a number"
    (data_dir / "h.csv").write_text(f"{_SECRET},other\n1,2\n", encoding="utf-8")
    body = _refused(client, _csv_spec(data_dir / "h.csv"), tmp_path)
    assert body["details"] == {"field": "dataset.label_column"}


def test_a_missing_dataset_names_the_field_not_the_resolved_path(
    client: httpx.Client, tmp_path: Path, data_dir: Path
) -> None:
    body = _refused(client, _csv_spec(data_dir / "nope.csv"), tmp_path)
    assert body["error"] == "dataset.path: no such file or folder"


def test_a_check_that_fails_unexpectedly_is_refused_in_words_and_logged_in_full(
    client: httpx.Client, tmp_path: Path, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The validator died with a traceback, which the 503 body carried word for word."""
    (data_dir / "d.csv").write_text("a,label\n1,x\n2,y\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="maas.jobs.submission"):
        body = _refused(client, _csv_spec(data_dir / "d.csv", f"{_FACTORIES}:build"), tmp_path)
    assert body["details"] == {"field": "spec"}
    assert "the server's log says why" in body["error"]
    assert "/private/weights.bin" not in str(body)
    assert "Traceback" in caplog.text and "private/weights.bin" in caplog.text
