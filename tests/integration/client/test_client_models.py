"""Models and versions through the SDK: upload, read, default version, archive, download,
serving configs, the validation gate and evaluations."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

import pytest

from maas.client import Artifact, AuditEvent, Client, ServingConfig, Version
from maas.errors import ConflictError, GateFailedError, IntegrityError, NotFoundError
from maas.protocol.signature import Signature, TensorSpec
from maas.testing.models import corrupt_stored_artifact

LINEAR_SIGNATURE = Signature(
    (TensorSpec("input", "FP32", (-1, 4)),), (TensorSpec("logits", "FP32", (-1, 3)),)
)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_upload_then_models_and_versions_read_back_typed(
    client: Client, linear: Path, linear_b: Path
) -> None:
    first = client.upload("lin", linear, description="a linear model")
    assert isinstance(first, Version)
    assert (first.model, first.version, first.format) == ("lin", 1, "onnx")
    assert first.signature == LINEAR_SIGNATURE
    assert first.artifact_sha256 == _sha256(linear)
    assert first.artifacts == {"onnx": Artifact(_sha256(linear), linear.stat().st_size)}
    assert first.size_bytes == linear.stat().st_size
    assert first.lineage["source"] == "upload"
    assert first.archived is None
    assert isinstance(first.created_at, datetime) and first.created_at.tzinfo is not None

    second = client.upload("lin", linear_b.read_bytes())  # bytes work as well as a path
    assert second.version == 2 and second.artifact_sha256 == _sha256(linear_b)

    [model] = client.list_models()
    assert model == client.get_model("lin")
    assert (model.name, model.description, model.versions, model.aliases) == (
        "lin",
        "a linear model",
        (1, 2),
        {},
    )
    assert model.created_at.tzinfo is not None
    assert [v.version for v in client.list_versions("lin")] == [1, 2]
    assert client.get_version("lin", 1) == first
    assert client.get_version("lin", "1") == first


def test_get_version_without_ref_is_production_else_the_newest(
    client: Client, linear: Path, linear_b: Path
) -> None:
    client.upload("lin", linear)
    client.upload("lin", linear_b)
    assert client.get_version("lin").version == 2  # no production: the newest
    client.promote("lin", 1)
    assert client.get_version("lin").version == 1
    assert client.get_version("lin", "production").version == 1
    with pytest.raises(NotFoundError):
        client.get_version("nope")


def test_archive_takes_a_version_out_of_the_listings(
    client: Client, linear: Path, linear_b: Path
) -> None:
    client.upload("lin", linear)
    client.upload("lin", linear_b)
    client.promote("lin", 1)
    with pytest.raises(ConflictError, match="production"):
        client.archive("lin", 1)  # production names it
    archived = client.archive("lin", 2, reason="wrong weights")
    assert archived.version == 2 and archived.archived is not None
    assert archived.archived.reason == "wrong weights"
    assert archived.archived.actor.startswith("api:")
    assert archived.archived.at.tzinfo is not None
    assert [v.version for v in client.list_versions("lin")] == [1]
    assert [v.version for v in client.list_versions("lin", include_archived=True)] == [1, 2]
    assert client.get_model("lin").versions == (1,)
    assert client.get_version("lin").version == 1


def test_download_streams_the_exact_bytes(
    client: Client, linear: Path, linear_b: Path, tmp_path: Path
) -> None:
    client.upload("lin", linear)
    client.upload("lin", linear_b)
    client.promote("lin", 1)
    folder = tmp_path / "downloads"
    folder.mkdir()
    into_folder = client.download("lin", "production", folder)
    assert into_folder == folder / "lin-1.onnx"
    assert into_folder.read_bytes() == linear.read_bytes()
    named = client.download("lin", 2, tmp_path / "named.bin", format="onnx")
    assert named == tmp_path / "named.bin" and named.read_bytes() == linear_b.read_bytes()
    default = client.download("lin", None, tmp_path / "default.onnx")
    assert default.read_bytes() == linear.read_bytes()

    with pytest.raises(NotFoundError):
        client.download("lin", 1, folder, format="torchscript")
    assert sorted(p.name for p in folder.iterdir()) == ["lin-1.onnx"]  # nothing half-written


def test_a_corrupted_artifact_is_never_written(
    client: Client, linear: Path, tmp_path: Path
) -> None:
    version = client.upload("lin", linear)
    corrupt_stored_artifact(tmp_path / "artifacts", version.artifact_sha256)
    folder = tmp_path / "downloads"
    folder.mkdir()
    with pytest.raises(IntegrityError):
        client.download("lin", 1, folder)
    assert list(folder.iterdir()) == []


def test_serving_config_round_trip(client: Client, linear: Path, linear_b: Path) -> None:
    client.upload("lin", linear)
    client.upload("lin", linear_b, config={"batching": {"max_batch_size": 8}})
    default = client.get_config("lin", 1)
    assert isinstance(default, ServingConfig)
    assert (default.model, default.version, default.revision) == ("lin", 1, 0)
    uploaded = client.get_config("lin", 2)
    assert uploaded.revision == 1 and uploaded.config["batching"]["max_batch_size"] == 8

    changed = client.set_config("lin", 1, {"batching": {"max_batch_size": 4}})
    assert changed.revision == 1 and changed.config["batching"]["max_batch_size"] == 4
    assert client.get_config("lin", 1) == changed


def test_the_gate_refuses_promotion_until_forced(
    client: Client, linear: Path, linear_b: Path
) -> None:
    client.upload("lin", linear)
    client.upload("lin", linear_b)
    rules = [{"metric": "accuracy", "min": 0.9}]
    assert client.get_gate("lin") == []
    assert client.set_gate("lin", rules) == rules
    assert client.get_gate("lin") == rules

    with pytest.raises(GateFailedError) as refused:
        client.promote("lin", 2)
    assert refused.value.code == "gate_failed"
    assert any("accuracy" in failure for failure in refused.value.details["failed"])
    assert "production" not in client.get_model("lin").aliases

    forced = client.promote("lin", 2, force=True, reason="hotfix, measured by hand")
    assert (forced.alias, forced.version) == ("production", 2)
    [move] = client.alias_history("lin", "production")
    assert move.forced and move.reason == "hotfix, measured by hand"
    assert client.set_gate("lin", []) == []


def test_record_evaluation_is_audited(client: Client, linear: Path) -> None:
    client.upload("lin", linear)
    event = client.record_evaluation("lin", 1, {"dataset": "holdout", "accuracy": 0.97})
    assert isinstance(event, AuditEvent)
    assert (event.action, event.model, event.version) == ("version.evaluated", "lin", 1)
    assert event.details == {"dataset": "holdout", "accuracy": 0.97}
    assert event.actor.startswith("api:")
    assert client.audit("lin", action="version.evaluated") == [event]
