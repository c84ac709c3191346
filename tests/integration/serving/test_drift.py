"""Input drift on a real server: a tiny ONNX model of 64 float inputs, its reference set
from digits' training rows over the API, then held-out digits rows sent over REST stay
below the threshold and shifted rows go above it, in the API and in ``/metrics``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from maas.client import Client, VersionDrift
from maas.config import Settings
from maas.errors import InvalidInputError, NotFoundError
from maas.monitoring.drift import DEFAULT_THRESHOLD, MIN_ROWS, Reference, ReferenceSource
from maas.registry import Registry
from maas.testing.models import write_linear_model
from maas.testing.server import running_server
from maas.training.datasets import Dataset, load_digits

T = TypeVar("T")
DEADLINE_S = 30.0


def _eventually(read: Callable[[], T], done: Callable[[T], bool]) -> T:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        value = read()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"still {value!r} after {DEADLINE_S} s"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_digits(seed=0)


@pytest.fixture
def url(tmp_path: Path, local_registry: Registry) -> Iterator[str]:
    settings = Settings(home=tmp_path, refresh_interval_s=0.1, drift_interval_s=0.1)
    with running_server(settings, local_registry) as served:
        yield served


@pytest.fixture
def maas(url: str, tmp_path: Path) -> Iterator[Client]:
    with Client(url) as client:
        client.upload("digits", write_linear_model(tmp_path / "m.onnx", 64, 10))
        yield client


def _reference(digits: Dataset) -> dict[str, Any]:
    source = ReferenceSource("dataset", "digits' training rows", dataset="digits", split="train")
    return Reference.build({"input": digits.x_train}, source).to_dict()


def _send(maas: Client, rows: np.ndarray) -> None:
    for row in rows:
        maas.infer("digits", {"input": row[None].astype(np.float32)})


def _scored(maas: Client, rows: int) -> VersionDrift:
    """The version's drift once this server has scored a window of ``rows`` rows."""
    found = _eventually(lambda: maas.drift("digits").versions, lambda v: v[0].rows == rows)
    return found[0]


def test_held_out_rows_are_quiet_and_shifted_rows_drift(maas: Client, digits: Dataset) -> None:
    (before,) = maas.drift("digits").versions
    assert before.reference is None and before.score is None  # no reference yet

    stored = maas.set_reference("digits", 1, _reference(digits))
    assert (stored.version, stored.revision) == (1, 1)
    assert maas.get_reference("digits", 1).reference == stored.reference
    assert stored.source["description"] == "digits' training rows"

    _send(maas, digits.x_val)
    quiet = _scored(maas, len(digits.x_val))
    assert quiet.window_rows == 2000 and quiet.sampled_every == 1
    assert quiet.reference is not None and quiet.reference["rows"] == len(digits.x_train)
    assert quiet.reference["source"]["dataset"] == "digits"
    assert quiet.score is not None and quiet.threshold == DEFAULT_THRESHOLD
    assert quiet.score < DEFAULT_THRESHOLD * 0.75 and quiet.drifted is False
    assert len(quiet.features) == 64 and quiet.features[0].name == "input[0]"
    assert quiet.score == max(f.psi for f in quiet.features)
    assert quiet.computed_at is not None

    # A replaced reference starts a fresh window: now only shifted rows are in it.
    again = maas.set_reference("digits", 1, _reference(digits))
    assert again.revision == 2
    brighter = np.clip(digits.x_val * 1.3, 0.0, 1.0)
    _send(maas, brighter[:MIN_ROWS])
    loud = _scored(maas, MIN_ROWS)
    assert loud.score is not None and loud.score > DEFAULT_THRESHOLD * 3 and loud.drifted is True
    assert loud.reference is not None and loud.reference["revision"] == 2
    worst = max(loud.features, key=lambda f: f.psi)
    assert worst.ks > 0.2

    events = maas.audit("digits", action="reference.set")
    assert [e.details["revision"] for e in events] == [2, 1]
    assert events[0].details["replaced"] == 1 and events[0].details["features"] == 64


def test_metrics_show_the_drift_score(maas: Client, digits: Dataset, url: str) -> None:
    maas.set_reference("digits", 1, _reference(digits))
    _send(maas, digits.x_val[:MIN_ROWS])
    scored = _scored(maas, MIN_ROWS)
    reply = httpx.get(f"{url}/metrics")
    if reply.status_code == 404:
        pytest.skip("this server has no /metrics route yet")
    samples = {
        (s.name, s.labels.get("feature", "")): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
        if s.name.startswith("maas_drift_") and s.labels.get("model") == "digits"
    }
    assert samples[("maas_drift_score", "")] == pytest.approx(scored.score)
    assert samples[("maas_drift_window_rows", "")] == MIN_ROWS
    assert samples[("maas_drift_psi", "input[0]")] == pytest.approx(scored.features[0].psi)
    assert samples[("maas_drift_ks", "input[63]")] == pytest.approx(scored.features[63].ks)


def test_a_bad_reference_is_a_400_naming_the_field(maas: Client, digits: Dataset, url: str) -> None:
    document = _reference(digits)
    document["features"][5]["edges"] = [1.0, 0.5]
    reply = httpx.put(f"{url}/api/models/digits/versions/1/reference", json=document)
    assert reply.status_code == 400
    body = reply.json()
    assert body["code"] == "invalid_input"
    assert body["details"]["field"] == "reference.features[5].edges"
    assert body["error"].startswith("reference.features[5].edges: ")

    other = Reference.build({"pixels": digits.x_train}, ReferenceSource("dataset")).to_dict()
    with pytest.raises(InvalidInputError, match=r"reference.inputs\[0\].name: .*'pixels'"):
        maas.set_reference("digits", 1, other)
    narrow = Reference.build({"input": digits.x_train[:, :8]}, ReferenceSource("dataset"))
    with pytest.raises(InvalidInputError, match=r"reference.inputs\[0\].row_shape"):
        maas.set_reference("digits", 1, narrow.to_dict())
    with pytest.raises(NotFoundError, match="no input reference"):
        maas.get_reference("digits", 1)
    with pytest.raises(NotFoundError):
        maas.set_reference("digits", 7, _reference(digits))
    with pytest.raises(NotFoundError):
        maas.drift("ghost")
