"""Quantisation of trained digits models with the real ONNX Runtime quantisers."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper

from maas.errors import InvalidArtifactError, InvalidInputError
from maas.optimize.quantize import (
    CalibrationMethod,
    QuantizationMethod,
    QuantizationResult,
    quantize_model,
)
from maas.training.datasets import Dataset, load_digits
from maas.training.export import export_onnx
from maas.training.trainer import TrainConfig, train
from maas.training.zoo import ClassifierHead, build_model

_CALIBRATION_ROWS = 256
_HISTOGRAMS: tuple[CalibrationMethod, ...] = ("entropy", "percentile")
_METHODS: tuple[QuantizationMethod, ...] = ("dynamic", "static", "float16")


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_digits()


@pytest.fixture(scope="module")
def calibration(digits: Dataset) -> np.ndarray:
    return np.array(digits.x_train[:_CALIBRATION_ROWS])


def _exported(name: str, epochs: int, digits: Dataset, folder: Path) -> Path:
    model = build_model(name, (64,), 10, seed=0)
    train(model, digits, TrainConfig(epochs=epochs, device="cpu"))
    path = folder / f"{name}.onnx"
    sample = torch.from_numpy(digits.x_val[:8].copy())
    export_onnx(ClassifierHead(model), sample, path, output_names=("logits", "label"))
    return path


@pytest.fixture(scope="module")
def cnn(digits: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zoo digits CNN (Conv path), 3 epochs: about 0.95 validation accuracy."""
    return _exported("cnn", 3, digits, tmp_path_factory.mktemp("cnn"))


@pytest.fixture(scope="module")
def mlp(digits: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zoo digits MLP (Gemm path), 10 epochs: about 0.94 validation accuracy."""
    return _exported("mlp", 10, digits, tmp_path_factory.mktemp("mlp"))


@pytest.fixture(params=["cnn", "mlp"])
def model(request: pytest.FixtureRequest) -> Path:
    path: Path = request.getfixturevalue(request.param)
    return path


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _accuracy(path: Path, digits: Dataset) -> float:
    (labels,) = _session(path).run(["label"], {"input": np.array(digits.x_val)})
    return float(np.mean(labels == digits.y_val))


def _weight_scales(path: Path) -> list[int]:
    """Sizes of the scales that dequantise the int8 Conv/Gemm weights, smallest first."""
    graph = onnx.load(str(path)).graph
    weights = {t.name: t for t in graph.initializer}
    return sorted(
        int(numpy_helper.to_array(weights[node.input[1]]).size)
        for node in graph.node
        if node.op_type == "DequantizeLinear"
        and node.input[0] in weights
        and weights[node.input[0]].data_type == onnx.TensorProto.INT8
        and len(weights[node.input[0]].dims) > 1
    )


def _refused(field: str) -> pytest.RaisesExc[InvalidInputError]:
    return pytest.raises(InvalidInputError, match=rf"^{field}: ")


def test_static_int8_keeps_accuracy_and_quantises_every_layer(
    model: Path, digits: Dataset, calibration: np.ndarray, tmp_path: Path
) -> None:
    target = tmp_path / "static.onnx"
    result = quantize_model(model, target, method="static", calibration=calibration)
    before, after = _accuracy(model, digits), _accuracy(target, digits)
    assert abs(after - before) <= 0.02, f"float {before:.4f}, static int8 {after:.4f}"
    assert target.stat().st_size < 0.45 * model.stat().st_size
    assert result.calibration_rows == _CALIBRATION_ROWS
    expected = {"QLinearConv": 2, "QGemm": 1} if model.stem == "cnn" else {"QGemm": 3}
    assert expected.items() <= result.quantized_ops.items()
    # AdaptiveAvgPool exports as ReduceMean, which has no int8 kernel: it alone stays float.
    left = [{"op_type": "ReduceMean", "nodes": ["node_mean"]}] if model.stem == "cnn" else []
    assert result.float_ops == left


def test_dynamic_int8_is_smaller_and_leaves_activations_float(
    model: Path, digits: Dataset, tmp_path: Path
) -> None:
    target = tmp_path / "dynamic.onnx"
    result = quantize_model(model, target, method="dynamic")
    before, after = _accuracy(model, digits), _accuracy(target, digits)
    assert abs(after - before) <= 0.02, f"float {before:.4f}, dynamic int8 {after:.4f}"
    assert target.stat().st_size < 0.45 * model.stat().st_size
    assert result.calibration_rows == 0
    expected = (
        {"ConvInteger": 2, "DynamicQuantizeMatMul": 1}
        if model.stem == "cnn"
        else {"DynamicQuantizeMatMul": 3}
    )
    assert result.quantized_ops == expected
    float_ops = {op["op_type"]: len(op["nodes"]) for op in result.float_ops}
    assert float_ops["Relu"] == 2  # dynamic quantises weights only; activations stay float


def test_per_channel_gives_each_output_channel_its_own_scale(
    cnn: Path, digits: Dataset, calibration: np.ndarray, tmp_path: Path
) -> None:
    for per_channel, scales in ((False, [1, 1, 1]), (True, [10, 32, 64])):
        target = tmp_path / f"per_channel_{per_channel}.onnx"
        result = quantize_model(
            cnn, target, method="static", per_channel=per_channel, calibration=calibration
        )
        assert result.per_channel is per_channel
        assert _weight_scales(target) == scales
        assert abs(_accuracy(target, digits) - _accuracy(cnn, digits)) <= 0.02


@pytest.mark.parametrize("method", _HISTOGRAMS)
def test_histogram_calibrators_work_without_printing(
    cnn: Path,
    digits: Dataset,
    calibration: np.ndarray,
    tmp_path: Path,
    method: CalibrationMethod,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / f"{method}.onnx"
    quantize_model(cnn, target, method="static", calibration=calibration, calibration_method=method)
    assert abs(_accuracy(target, digits) - _accuracy(cnn, digits)) <= 0.02
    assert capsys.readouterr() == ("", "")


def test_onnx_runtime_logs_become_debug_records(
    cnn: Path, calibration: np.ndarray, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # On the logger itself: an ancestor's level (``maas`` at INFO) must not hide the records.
    with caplog.at_level(logging.DEBUG, logger="maas.optimize"):  # the calibrator prints, logs
        quantize_model(
            cnn,
            tmp_path / "q.onnx",
            method="static",
            calibration=calibration,
            calibration_method="entropy",
        )
    assert [r for r in caplog.records if r.levelno > logging.DEBUG] == []
    assert {r.name for r in caplog.records} == {"maas.optimize"}  # ORT's lines, demoted


def test_float16_halves_the_file_and_keeps_float32_io(
    model: Path, digits: Dataset, tmp_path: Path
) -> None:
    target = tmp_path / "half.onnx"
    result = quantize_model(model, target, method="float16")
    session = _session(target)
    assert [(i.name, i.type) for i in session.get_inputs()] == [("input", "tensor(float)")]
    assert [(o.name, o.type) for o in session.get_outputs()] == [
        ("logits", "tensor(float)"),
        ("label", "tensor(int64)"),
    ]
    logits, _ = session.run(None, {"input": np.array(digits.x_val[:5])})
    assert logits.dtype == np.float32
    assert target.stat().st_size < 0.6 * model.stat().st_size
    assert abs(_accuracy(target, digits) - _accuracy(model, digits)) <= 0.02
    compute = "Conv" if model.stem == "cnn" else "Gemm"
    assert result.quantized_ops[compute] == (2 if model.stem == "cnn" else 3)
    assert result.float_ops == []


@pytest.mark.parametrize("method", _METHODS)
def test_result_keeps_names_types_and_a_dynamic_batch(
    cnn: Path, digits: Dataset, calibration: np.ndarray, tmp_path: Path, method: QuantizationMethod
) -> None:
    target = tmp_path / f"{method}.onnx"
    quantize_model(cnn, target, method=method, calibration=calibration)
    source, result = _session(cnn), _session(target)
    for ours, theirs in (
        (source.get_inputs(), result.get_inputs()),
        (source.get_outputs(), result.get_outputs()),
    ):
        assert [(v.name, v.type, v.shape) for v in ours] == [
            (v.name, v.type, v.shape) for v in theirs
        ]
    for rows in (1, 7):
        logits, labels = result.run(None, {"input": np.array(digits.x_val[:rows])})
        assert logits.shape == (rows, 10) and labels.shape == (rows,)


def test_excluded_op_types_stay_float_and_are_named(
    cnn: Path, calibration: np.ndarray, tmp_path: Path
) -> None:
    result = quantize_model(
        cnn,
        tmp_path / "no_conv.onnx",
        method="static",
        calibration=calibration,
        exclude_op_types=["Conv"],
    )
    assert "QLinearConv" not in result.quantized_ops
    assert result.quantized_ops["QGemm"] == 1
    floats = {op["op_type"]: op["nodes"] for op in result.float_ops}
    assert floats["Conv"] == ["node_Conv_31", "node_Conv_32"]


def test_excluding_gemm_from_dynamic_keeps_the_mlp_float(mlp: Path, tmp_path: Path) -> None:
    # The dynamic quantiser rewrites Gemm as MatMul before quantising: the exclusion follows.
    result = quantize_model(
        mlp, tmp_path / "no_gemm.onnx", method="dynamic", exclude_op_types=["Gemm"]
    )
    assert result.quantized_ops == {}
    floats = {op["op_type"]: op["nodes"] for op in result.float_ops}
    assert floats["Gemm"] == ["node_linear", "node_linear_1", "node_linear_2"]


def test_calibration_reports_each_batch_and_can_be_cancelled(
    cnn: Path, calibration: np.ndarray, tmp_path: Path
) -> None:
    seen: list[tuple[int, int]] = []
    quantize_model(
        cnn,
        tmp_path / "q.onnx",
        method="static",
        calibration=calibration[:100],
        batch_size=32,
        on_batch=lambda done, batches: seen.append((done, batches)),
    )
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]

    class Cancelled(Exception):
        pass

    def cancel(done: int, batches: int) -> None:
        raise Cancelled

    target = tmp_path / "cancelled.onnx"
    with pytest.raises(Cancelled):
        quantize_model(cnn, target, method="static", calibration=calibration, on_batch=cancel)


def test_result_is_json_ready(mlp: Path, calibration: np.ndarray, tmp_path: Path) -> None:
    result = quantize_model(mlp, tmp_path / "q.onnx", method="static", calibration=calibration)
    assert isinstance(result, QuantizationResult)
    assert json.loads(json.dumps(result.to_dict())) == {
        "method": "static",
        "per_channel": False,
        "calibration_rows": _CALIBRATION_ROWS,
        "quantized_ops": result.quantized_ops,
        "float_ops": [],
    }


@pytest.mark.parametrize("rows", [None, np.zeros((0, 64), np.float32)])
def test_static_needs_calibration_rows(cnn: Path, tmp_path: Path, rows: np.ndarray | None) -> None:
    with _refused("calibration"):
        quantize_model(cnn, tmp_path / "q.onnx", method="static", calibration=rows)


@pytest.mark.parametrize("shape", [(4, 10), (4, 8, 8), (64,)])
def test_calibration_must_fit_the_model_input(
    cnn: Path, tmp_path: Path, shape: tuple[int, ...]
) -> None:
    with _refused("calibration") as caught:
        quantize_model(cnn, tmp_path / "q.onnx", method="static", calibration=np.zeros(shape))
    assert "(batch, 64)" in caught.value.message


def test_unknown_excluded_op_type_is_refused_with_the_models_op_types(
    cnn: Path, tmp_path: Path
) -> None:
    with _refused("exclude_op_types") as caught:
        quantize_model(cnn, tmp_path / "q.onnx", method="dynamic", exclude_op_types=["Softmax"])
    assert caught.value.message == (
        "exclude_op_types: unknown op type 'Softmax' "
        "(the model has: ArgMax, Conv, Gemm, MaxPool, ReduceMean, Relu, Reshape)"
    )
    assert caught.value.details == {"field": "exclude_op_types"}


def test_a_file_that_is_not_onnx_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "model.onnx"
    source.write_bytes(b"not a model")
    with pytest.raises(InvalidArtifactError, match=r"^source: "):
        quantize_model(source, tmp_path / "q.onnx", method="dynamic")
