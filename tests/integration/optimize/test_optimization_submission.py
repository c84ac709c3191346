"""Optimisation jobs are checked in full at submission: a request that cannot run is refused
with an error naming the field, and nothing is queued or registered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maas.control.uploads import register_upload
from maas.errors import InvalidInputError
from maas.jobs.policy import SubmissionPolicy
from maas.jobs.submission import submit_job
from maas.registry import Registry
from maas.testing.models import write_linear_model
from maas.training.pipeline import train_job
from maas.training.spec import parse_spec


@pytest.fixture
def trained(registry: Registry, tmp_path: Path) -> Registry:
    """``digits`` v1 (a small MLP trained here, also under ``production``) and ``uploaded``
    v1 (an ONNX upload: no TorchScript weights, no training data)."""
    spec = {
        "model_name": "digits",
        "model": {"options": {"hidden": [64]}},
        "hyperparameters": {"epochs": 1},
    }
    train_job(registry, parse_spec(spec))
    registry.aliases.set("digits", "production", 1, actor="test")
    linear = write_linear_model(tmp_path / "linear.onnx", in_features=64, out_features=10)
    register_upload(registry, "uploaded", linear, actor="test")
    return registry


def _refused(registry: Registry, document: dict[str, Any]) -> InvalidInputError:
    versions = {m.name: len(registry.list_versions(m.name)) for m in registry.list_models()}
    with pytest.raises(InvalidInputError) as refused:
        submit_job(registry, document, actor="test", policy=SubmissionPolicy())
    assert registry.jobs.list_jobs() == [], "a refused job is not queued"
    after = {m.name: len(registry.list_versions(m.name)) for m in registry.list_models()}
    assert after == versions, "nothing is registered"
    return refused.value


def _empty_npz(tmp_path: Path) -> Path:
    path = tmp_path / "empty.npz"
    np.savez(path, x=np.zeros((0, 64), np.float32), y=np.zeros((0,), np.int64))
    return path


@pytest.mark.parametrize(
    ("document", "field", "words"),
    [
        ({"kind": "quantize", "parent": "nothing:1"}, "parent", "not found"),
        ({"kind": "quantize", "parent": "digits:7"}, "parent", "not found"),
        ({"kind": "prune", "parent": "uploaded:1"}, "parent", "no TorchScript weights"),
        ({"kind": "prune", "parent": "digits:1", "amount": 0.999}, "amount", "at most"),
        (
            {"kind": "quantize", "parent": "uploaded:1", "method": "static"},
            "evaluation",
            "not trained by maas",
        ),
        (
            {
                "kind": "distill",
                "teacher": "digits:1",
                "student": {"name": "tests.integration.optimize.students:three_classes"},
            },
            "student",
            "3 classes but the teacher 10",
        ),
        ({"kind": "distill", "teacher": "digits:1", "temperature": 0}, "temperature", "greater"),
        ({"kind": "shrink", "parent": "digits:1"}, "kind", "unknown job kind"),
    ],
    ids=[
        "unknown-model",
        "unknown-version",
        "prune-without-torchscript",
        "unreachable-amount",
        "upload-without-data",
        "student-classes",
        "bad-temperature",
        "unknown-kind",
    ],
)
def test_a_job_that_cannot_run_is_refused_naming_the_field(
    trained: Registry, document: dict[str, Any], field: str, words: str
) -> None:
    error = _refused(trained, document)
    assert error.details["field"] == field, error.message
    assert error.message.startswith(f"{field}: ") and words in error.message, error.message


def test_an_empty_calibration_set_is_refused(trained: Registry, tmp_path: Path) -> None:
    document = {
        "kind": "quantize",
        "parent": "digits:1",
        "method": "static",
        "calibration": {"kind": "npz", "path": str(_empty_npz(tmp_path))},
    }
    error = _refused(trained, document)
    assert error.details["field"] == "calibration.path"
    assert error.message == "calibration.path: holds no samples"


def test_calibration_rows_must_fit_the_parents_input(trained: Registry, tmp_path: Path) -> None:
    path = tmp_path / "wide.npz"
    np.savez(path, x=np.zeros((20, 32), np.float32), y=np.arange(20) % 2)
    document = {
        "kind": "quantize",
        "parent": "digits:1",
        "method": "static",
        "calibration": {"kind": "npz", "path": str(path)},
    }
    error = _refused(trained, document)
    assert error.details["field"] == "calibration"
    assert "[32]" in error.message and "[64]" in error.message


def test_a_good_job_is_queued_pinned_to_a_version_with_defaults_filled(trained: Registry) -> None:
    job = submit_job(
        trained,
        {"kind": "prune", "parent": "digits:production", "fine_tune": {"epochs": 2}},
        actor="test",
    )
    assert job.state == "queued" and job.model_name == "digits" and job.epochs == 2
    assert job.spec["parent"] == "digits:1"  # an alias moving later changes nothing
    assert job.spec["dataset"]["kind"] == "digits"  # the parent's training data
    assert job.spec["evaluation"]["kind"] == "digits"
    assert job.spec["split_seed"] == 0
