from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from maas.errors import InvalidArtifactError
from maas.protocol.datatypes import numpy_dtype
from maas.protocol.signature import Signature, TensorSpec
from maas.runtimes.base import LoadOptions
from maas.runtimes.onnx import OnnxRuntime
from maas.testing.models import IDENTITY_TYPES, write_identity_model, write_linear_model


@pytest.mark.parametrize("datatype", sorted(IDENTITY_TYPES))
def test_identity_model_signature_reports_its_datatype(tmp_path: Path, datatype: str) -> None:
    runtime = OnnxRuntime.load(write_identity_model(tmp_path / "m.onnx", datatype, width=3))
    spec = TensorSpec("x", datatype, (-1, 3))
    assert runtime.signature == Signature((spec,), (TensorSpec("y", datatype, (-1, 3)),))
    assert runtime.batchable


@pytest.mark.parametrize("datatype", ["FP32", "INT64", "BOOL", "BYTES"])
def test_identity_model_returns_its_input(tmp_path: Path, datatype: str) -> None:
    runtime = OnnxRuntime.load(write_identity_model(tmp_path / "m.onnx", datatype, width=2))
    if datatype == "BYTES":
        x = np.array([[b"a", b"bc"]], dtype=object)
    else:
        x = np.array([[1, 0], [0, 1]]).astype(numpy_dtype(datatype))
    np.testing.assert_array_equal(runtime.predict({"x": x})["y"], x)


def test_intra_op_threads_is_honoured(tmp_path: Path) -> None:
    path = write_linear_model(tmp_path / "linear.onnx", in_features=4, out_features=3)
    runtime = OnnxRuntime.load(path, LoadOptions(intra_op_threads=1))
    logits = runtime.predict({"input": np.ones((5, 4), np.float32)})["logits"]
    assert logits.shape == (5, 3)


def test_a_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}, protocol=4))
    with pytest.raises(InvalidArtifactError, match="pickle"):
        OnnxRuntime.load(path)


def test_a_zip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps([1, 2]))
    with pytest.raises(InvalidArtifactError, match="zip"):
        OnnxRuntime.load(path)


def test_garbage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(np.random.default_rng(0).bytes(512))
    with pytest.raises(InvalidArtifactError, match="not a loadable ONNX model"):
        OnnxRuntime.load(path)


def test_runtime_threads_do_not_spin_between_runs_unless_asked(tmp_path: Path) -> None:
    """Spinning sessions kept a core busy per version (a canary halved throughput)."""
    path = write_linear_model(tmp_path / "m.onnx")
    entry = "session.force_spinning_stop"
    quiet = OnnxRuntime.load(path)
    spinning = OnnxRuntime.load(path, LoadOptions(spinning=True))
    assert quiet._session.get_session_options().get_session_config_entry(entry) == "1"
    with pytest.raises(RuntimeError, match="does not have configuration"):
        spinning._session.get_session_options().get_session_config_entry(entry)
    assert quiet.on_cpu
