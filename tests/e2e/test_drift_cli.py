"""``maas models reference`` and ``maas drift`` as the real executable runs them: the
reference built on this machine from a dataset (on the registry, or sent to a server),
and a server's drift report as a table and as JSON."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from maas.client import Client
from maas.config import Settings
from maas.control.uploads import register_upload
from maas.monitoring.drift import DEFAULT_THRESHOLD, MIN_ROWS, Reference
from maas.registry import Registry
from maas.testing.models import write_linear_model
from maas.testing.server import running_server
from maas.training.datasets import load_digits
from tests.e2e.test_cli import maas, ok, one_error_line, open_registry

pytestmark = pytest.mark.e2e


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    """A registry in ``tmp_path/home`` holding ``digits`` version 1: 64 floats in."""
    registry = open_registry(tmp_path / "home")
    try:
        registry.upgrade()
        model = write_linear_model(tmp_path / "digits.onnx", 64, 10)
        register_upload(registry, "digits", model, actor="test")
        yield registry
    finally:
        registry.close()


def test_reference_from_a_dataset_on_the_registry(tmp_path: Path, registry: Registry) -> None:
    out = ok(maas(tmp_path, "models", "reference", "digits", "1", "--dataset", "digits"))
    assert "digits version 1 set input reference revision 1" in " ".join(out.split())
    assert "64 features of 1437 rows: the train rows of digits" in " ".join(out.split())
    stored = registry.references.get("digits", 1)
    assert stored is not None and stored.actor.startswith("cli:")
    reference = Reference.from_dict(stored.document)
    assert reference.source.kind == "dataset" and reference.source.split == "train"
    assert reference.source.sha256 == load_digits().content_sha256

    shown = json.loads(ok(maas(tmp_path, "models", "reference", "digits", "1", "--json")))
    assert shown["revision"] == 1 and shown["reference"]["rows"] == 1437
    out = ok(
        maas(
            tmp_path, "models", "reference", "digits", "1", "--dataset", "digits", "--split", "all"
        )
    )
    assert "revision 2" in out and "1797 rows" in out

    wrong = tmp_path / "wide.npz"
    np.savez(wrong, x=np.zeros((20, 3), np.float32), y=np.arange(20) % 2)
    line = one_error_line(
        maas(tmp_path, "models", "reference", "digits", "1", "--dataset", str(wrong))
    )
    assert "reference.inputs[0].row_shape" in line


def test_drift_needs_a_server(tmp_path: Path, registry: Registry) -> None:
    assert "no maas server answers" in one_error_line(maas(tmp_path, "drift", "digits"))
    line = one_error_line(maas(tmp_path, "--local", "drift", "digits"))
    assert "needs a running server" in line


def test_drift_from_a_server(tmp_path: Path, registry: Registry) -> None:
    settings = Settings(home=tmp_path / "home", refresh_interval_s=0.1, drift_interval_s=0.1)
    digits = load_digits()
    with running_server(settings, registry) as url, Client(url) as client:
        out = ok(
            maas(tmp_path, "-s", url, "models", "reference", "digits", "1", "--dataset", "digits")
        )
        assert "revision 1" in out
        for row in digits.x_val[:MIN_ROWS]:
            client.infer("digits", {"input": row[None]})
        deadline = time.monotonic() + 30.0
        while client.drift("digits").versions[0].rows < MIN_ROWS:
            assert time.monotonic() < deadline, "the server never scored the window"
            time.sleep(0.05)
        table = ok(maas(tmp_path, "-s", url, "drift", "digits"))
        report = json.loads(ok(maas(tmp_path, "-s", url, "drift", "digits", "--json")))
    words = " ".join(table.split())
    assert f"{MIN_ROWS}/2000" in words and "the train rows of digits" in words
    assert "largest PSI first" in words and "input[" in words
    (entry,) = report["versions"]
    assert entry["version"] == 1 and entry["rows"] == MIN_ROWS
    assert entry["score"] < DEFAULT_THRESHOLD and entry["drifted"] is False
    assert f"{entry['score']:.4f}" in table
