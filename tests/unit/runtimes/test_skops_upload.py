from __future__ import annotations

import hashlib
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io  # type: ignore[import-untyped]  # no type hints shipped
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_digits, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from maas.control.uploads import register_upload
from maas.errors import InvalidArtifactError
from maas.registry import Registry
from maas.runtimes.onnx import OnnxRuntime


class CustomClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]  # untyped base
    """A user-defined class: skops must not trust it, so maas refuses the file."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> CustomClassifier:
        self.classes_ = np.unique(y)
        self.n_features_in_ = x.shape[1]
        return self


def _dump(model: Any, path: Path) -> Path:
    skops.io.dump(model, path)
    return path


def _check_upload(registry: Registry, model: Any, x: np.ndarray, path: Path) -> None:
    version = register_upload(registry, "sk", path, artifact_format="skops", actor="test")
    assert version.artifact_format == "onnx"
    lineage = version.lineage
    assert lineage["source"] == "skops"
    assert lineage["original_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert {"sklearn_version", "skl2onnx_version"} <= set(lineage)
    assert [t.name for t in version.signature.inputs] == ["input"]
    runtime = OnnxRuntime.load(registry.artifact_path(version))
    rows = x.astype(np.float32)
    outputs = runtime.predict({"input": rows})
    np.testing.assert_array_equal(outputs["label"], model.predict(rows))
    np.testing.assert_allclose(outputs["probabilities"], model.predict_proba(rows), atol=1e-5)


def test_logistic_regression_becomes_an_onnx_version(registry: Registry, tmp_path: Path) -> None:
    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(x[::2], y[::2])
    _check_upload(registry, model, x[1::2], _dump(model, tmp_path / "lr.skops"))


def test_random_forest_becomes_an_onnx_version(registry: Registry, tmp_path: Path) -> None:
    x, y = load_digits(return_X_y=True)
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(x[:1000], y[:1000])
    _check_upload(registry, model, x[1000:1200], _dump(model, tmp_path / "rf.skops"))


def test_an_untrusted_type_is_refused(registry: Registry, tmp_path: Path) -> None:
    x, y = load_iris(return_X_y=True)
    path = _dump(CustomClassifier().fit(x, y), tmp_path / "custom.skops")
    with pytest.raises(InvalidArtifactError, match="CustomClassifier") as caught:
        register_upload(registry, "sk", path, artifact_format="skops", actor="test")
    assert any("CustomClassifier" in t for t in caught.value.details["untrusted_types"])
    assert registry.list_models() == []


def test_a_pickle_is_refused(registry: Registry, tmp_path: Path) -> None:
    x, y = load_iris(return_X_y=True)
    path = tmp_path / "model.skops"
    path.write_bytes(pickle.dumps(LogisticRegression(max_iter=1000).fit(x, y)))
    with pytest.raises(InvalidArtifactError, match="pickle"):
        register_upload(registry, "sk", path, artifact_format="skops", actor="test")
    assert registry.list_models() == []


def test_a_zip_that_is_not_skops_is_refused(tmp_path: Path, registry: Registry) -> None:
    path = tmp_path / "model.skops"
    path.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip archive
    with pytest.raises(InvalidArtifactError, match="skops"):
        register_upload(registry, "sk", path, artifact_format="skops", actor="test")
    assert registry.list_models() == []


def test_without_the_extra_the_upload_names_it(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, y = load_iris(return_X_y=True)
    path = _dump(LogisticRegression(max_iter=1000).fit(x, y), tmp_path / "lr.skops")
    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # import now raises ImportError
    with pytest.raises(InvalidArtifactError, match=r"maas\[sklearn\]"):
        register_upload(registry, "sk", path, artifact_format="skops", actor="test")
    assert registry.list_models() == []
