"""Int8 (dynamic, or static with calibration) and float16 versions of an ONNX model.

Every method first runs ONNX Runtime's ``quant_pre_process`` (shape inference and basic
graph clean-up). The choices below were measured on the digits CNN and MLP (CPU, the 360
validation rows, one thread):

- static writes QDQ with uint8 activations and int8 weights (U8S8). That is what ORT's
  x86 kernels run (they rewrite int8-activation QDQ to it at load), and with int8
  activations the last Gemm, whose output is a graph output, stayed float; accuracy was
  the same either way. ``reduce_range`` stays off: it changed nothing on these models.
- dynamic quantises every op ORT can (Conv, MatMul, Gemm). The MLP ran 1.4x faster than
  float, but the CNN 9x slower (ConvInteger has no fast CPU kernel): for convnets, static.
- float16 halves the file; ORT's CPU provider lacks float16 kernels for most ops and casts
  them back to float32 at load, so on CPU it saves space, not time.

The result's census of what runs in int8 and what stays float: ``maas.optimize.census``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, Literal, get_args

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime import quantization as ortq
from onnxruntime.quantization.shape_inference import quant_pre_process

from maas.errors import InvalidArtifactError, InvalidInputError, MaasError, describe
from maas.optimize.census import float16_census, int8_census

__all__ = ["CalibrationMethod", "QuantizationMethod", "QuantizationResult", "quantize_model"]

QuantizationMethod = Literal["dynamic", "static", "float16"]
CalibrationMethod = Literal["minmax", "entropy", "percentile"]

_log = logging.getLogger("maas.optimize")

_CALIBRATORS: Final = {
    "minmax": ortq.CalibrationMethod.MinMax,
    "entropy": ortq.CalibrationMethod.Entropy,
    "percentile": ortq.CalibrationMethod.Percentile,
}
_CHECK_ROWS: Final = 3


@dataclass(frozen=True, slots=True)
class QuantizationResult:
    """What was done and which of the model's compute ops run quantised or stay float.

    ``quantized_ops`` counts nodes by the op ORT runs (``QLinearConv``, ``ConvInteger``,
    ``MaxPool`` on uint8 ...), or for float16 the stored ops computing in float16.
    ``float_ops`` names the source model's nodes still computing in float32, by op type.
    """

    method: str
    per_channel: bool
    calibration_rows: int
    quantized_ops: dict[str, int]
    float_ops: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for a version's lineage and the comparison report."""
        return asdict(self)


class _Reader(ortq.CalibrationDataReader):  # type: ignore[misc]  # onnxruntime is untyped
    """Feeds ``rows`` in batches; ``on_batch(done, batches)`` after each has run."""

    def __init__(
        self,
        name: str,
        rows: np.ndarray,
        batch_size: int,
        on_batch: Callable[[int, int], None] | None,
    ) -> None:
        self._batches = [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
        self._name, self._next, self._on_batch = name, 0, on_batch
        self.raised: BaseException | None = None

    def get_next(self) -> dict[str, np.ndarray] | None:
        batches = len(self._batches)
        if self._next > batches:  # exhausted and reported
            return None
        # ORT asks for batch k+1 only once batch k has run, so k batches are done here.
        if self._next and self._on_batch is not None:
            try:
                self._on_batch(self._next, batches)
            except BaseException as exc:  # a cancellation must reach the caller as raised
                self.raised = exc
                raise
        self._next += 1
        return None if self._next > batches else {self._name: self._batches[self._next - 1]}


class _Demote(logging.Filter):
    """Turns ORT's root-logger calls (``logging.warning(...)``) into our DEBUG records."""

    def __init__(self) -> None:
        super().__init__()
        self._package = str(Path(ort.__file__).parent)

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.pathname.startswith(self._package):
            return True
        _log.debug("onnxruntime: %s", record.getMessage())
        return False


@contextlib.contextmanager
def _quiet_ort() -> Iterator[None]:
    """Route ORT's quantisation chatter to DEBUG logs while a quantiser runs.

    The quantisers log through the root logger (which would also install a stderr
    handler when there is none) and their histogram calibrators ``print``; warnings from
    inside them are caught too, as pytest runs with ``filterwarnings = error``. Records of
    ORT's named loggers below ERROR are dropped. Not thread-safe (stdout and the warning
    filters are process-wide): optimisation jobs run one per worker process.
    """
    root, ort_logger, demote, null = (
        logging.getLogger(),
        logging.getLogger("onnxruntime"),
        _Demote(),
        logging.NullHandler(),
    )
    level, printed = ort_logger.level, io.StringIO()
    root.addFilter(demote)
    root.addHandler(null)  # keeps logging.warning() from calling basicConfig()
    ort_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(printed):
            warnings.simplefilter("always")
            yield
        for warning in caught:
            _log.debug("onnxruntime warned: %s", warning.message)
    finally:
        root.removeFilter(demote)
        root.removeHandler(null)
        ort_logger.setLevel(level)
        for line in printed.getvalue().splitlines():
            _log.debug("onnxruntime: %s", line)


def _inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    weights = {t.name for t in model.graph.initializer}
    return [v for v in model.graph.input if v.name not in weights]


def _dims(value: onnx.ValueInfoProto) -> list[int | None]:
    """Static sizes as ints, dynamic ones as None."""
    return [
        d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim
    ]


def _dtype(value: onnx.ValueInfoProto) -> np.dtype[Any]:
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))


def _refuse(field: str, message: str) -> InvalidInputError:
    return InvalidInputError(f"{field}: {message}", {"field": field})


def _check_calibration(model: onnx.ModelProto, calibration: np.ndarray | None) -> np.ndarray:
    if calibration is None or len(calibration) == 0:
        raise _refuse("calibration", "static quantisation needs rows of the model's input")
    (value, *others) = _inputs(model)
    if others:
        raise _refuse("calibration", f"the model takes {len(others) + 1} inputs; only one is fed")
    dims = _dims(value)
    shown = "(" + ", ".join("batch" if d is None else str(d) for d in dims) + ")"
    if calibration.ndim != len(dims) or any(
        d is not None and d != n for d, n in zip(dims[1:], calibration.shape[1:], strict=True)
    ):
        raise _refuse(
            "calibration",
            f"rows of shape {tuple(calibration.shape[1:])} do not fit the model input "
            f"{value.name!r} of shape {shown}",
        )
    dtype = _dtype(value)
    try:
        return np.ascontiguousarray(calibration, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise _refuse("calibration", f"not {dtype} numbers: {describe(exc)}") from exc


def _check_exclusions(model: onnx.ModelProto, exclude_op_types: Sequence[str]) -> list[str]:
    present = sorted({n.op_type for n in model.graph.node})
    for op_type in exclude_op_types:
        if op_type not in present:
            raise _refuse(
                "exclude_op_types",
                f"unknown op type {op_type!r} (the model has: {', '.join(present)})",
            )
    return list(exclude_op_types)


def _without(registry: dict[str, Any], exclude: list[str]) -> list[str]:
    return sorted(set(registry) - set(exclude))


def _float16(source: Path, target: Path, exclude: list[str]) -> None:
    # Imported here: the package's __init__ puts its own folder on sys.path.
    from onnxruntime.transformers import float16

    block = [*float16.DEFAULT_OP_BLOCK_LIST, *exclude]
    model = float16.convert_float_to_float16(
        onnx.load(str(source)), keep_io_types=True, op_block_list=block
    )
    onnx.save(model, str(target))


def _check_interface(source: onnx.ModelProto, target: onnx.ModelProto) -> None:
    """Same input/output names, element types and (where both know them) dims."""
    for kind, ours, theirs in (
        ("inputs", _inputs(source), _inputs(target)),
        ("outputs", list(source.graph.output), list(target.graph.output)),
    ):
        same = [(v.name, v.type.tensor_type.elem_type) for v in ours] == [
            (v.name, v.type.tensor_type.elem_type) for v in theirs
        ] and all(
            not _dims(s) or not _dims(t) or _dims(s) == _dims(t)
            for s, t in zip(ours, theirs, strict=True)
        )
        if not same:
            raise MaasError(f"quantisation changed the model's {kind}; the result is not used")


def _feeds(model: onnx.ModelProto, calibration: np.ndarray | None) -> dict[str, np.ndarray]:
    if calibration is not None and len(calibration):
        return {_inputs(model)[0].name: calibration[:_CHECK_ROWS]}
    rng, feeds = np.random.default_rng(0), {}
    for value in _inputs(model):
        shape = [_CHECK_ROWS, *(1 if d is None else d for d in _dims(value)[1:])]
        feeds[value.name] = rng.random(shape).astype(_dtype(value))
    return feeds


def _profiled_run(
    source: Path, target: Path, feeds: dict[str, np.ndarray], workdir: Path
) -> list[dict[str, Any]]:
    """Run the result once as served (fusions on), check it, return ORT's per-node profile."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.log_severity_level = 3
    options.enable_profiling = True
    options.profile_file_prefix = str(workdir / "profile")
    try:
        session = ort.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])
        actual = session.run(None, feeds)
        profile = Path(session.end_profiling())
    except Exception as exc:
        raise MaasError(
            f"the quantised model does not run in ONNX Runtime: {describe(exc)}"
        ) from exc
    expected = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"]).run(
        None, feeds
    )
    for output, want in zip(actual, expected, strict=True):
        got = np.asarray(output)
        if got.shape != np.shape(want) or (got.dtype.kind == "f" and not np.isfinite(got).all()):
            raise MaasError("the quantised model answers wrong shapes or non-finite values")
    events: list[dict[str, Any]] = json.loads(profile.read_text())
    return [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]


def _quantize(
    method: str,
    prepared: Path,
    target: Path,
    *,
    per_channel: bool,
    reader: _Reader | None,
    calibration_method: str,
    exclude: list[str],
) -> None:
    if method == "float16":
        _float16(prepared, target, exclude)
    elif method == "dynamic":
        # The dynamic quantiser first rewrites each Gemm as a MatMul named <name>_MatMul.
        nodes = [n.name for n in onnx.load(str(prepared)).graph.node if n.op_type in exclude]
        ortq.quantize_dynamic(
            prepared,
            target,
            per_channel=per_channel,
            weight_type=ortq.QuantType.QInt8,
            op_types_to_quantize=_without(ortq.registry.IntegerOpsRegistry, exclude),
            nodes_to_exclude=[*nodes, *(f"{name}_MatMul" for name in nodes)],
        )
    else:
        ortq.quantize_static(
            prepared,
            target,
            reader,
            quant_format=ortq.QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=ortq.QuantType.QUInt8,
            weight_type=ortq.QuantType.QInt8,
            calibrate_method=_CALIBRATORS[calibration_method],
            op_types_to_quantize=_without(
                {**ortq.registry.QLinearOpsRegistry, **ortq.registry.QDQRegistry}, exclude
            ),
        )


def _load(source: Path) -> onnx.ModelProto:
    try:
        return onnx.load(str(source))
    except Exception as exc:  # protobuf's DecodeError and I/O errors alike
        raise InvalidArtifactError(
            f"source: not a loadable ONNX model: {describe(exc)}", {"field": "source"}
        ) from exc


def quantize_model(
    source: Path,
    target: Path,
    *,
    method: QuantizationMethod,
    per_channel: bool = False,
    calibration: np.ndarray | None = None,
    calibration_method: CalibrationMethod = "minmax",
    exclude_op_types: Sequence[str] = (),
    batch_size: int = 32,
    on_batch: Callable[[int, int], None] | None = None,
) -> QuantizationResult:
    """Write a quantised copy of the ONNX model ``source`` to ``target`` and describe it.

    ``calibration`` (rows of the model's one input) is required for ``static``, whose
    activation ranges it sets with ``calibration_method``, ``batch_size`` rows at a time;
    ``on_batch(done, batches)`` runs after each batch and may raise to cancel. For the
    other methods it only supplies the rows of the final check. ``exclude_op_types`` stay
    float. The result keeps ``source``'s input and output names, types and dynamic dims;
    it is run once before returning, and ``MaasError`` is raised when it does not run.

    >>> quantize_model(Path("m.onnx"), Path("q.onnx"), method="dynamic")  # doctest: +SKIP
    QuantizationResult(method='dynamic', ..., quantized_ops={'DynamicQuantizeMatMul': 3}, ...)
    """
    if method not in get_args(QuantizationMethod):
        raise _refuse("method", f"unknown method {method!r}; choose dynamic, static or float16")
    if calibration_method not in _CALIBRATORS:
        raise _refuse("calibration_method", f"unknown method {calibration_method!r}")
    if batch_size < 1:
        raise _refuse("batch_size", f"must be >= 1, got {batch_size}")
    original = _load(source)
    exclude = _check_exclusions(original, exclude_op_types)
    given = calibration is not None and len(calibration) > 0
    rows = _check_calibration(original, calibration) if method == "static" or given else None
    reader = None
    if method == "static" and rows is not None:
        reader = _Reader(_inputs(original)[0].name, rows, batch_size, on_batch)
    with tempfile.TemporaryDirectory(prefix="maas-quantize-") as tmp:
        workdir = Path(tmp)
        prepared = workdir / "prepared.onnx"
        try:
            with _quiet_ort():
                quant_pre_process(source, prepared)
                _quantize(
                    method,
                    prepared,
                    target,
                    per_channel=per_channel,
                    reader=reader,
                    calibration_method=calibration_method,
                    exclude=exclude,
                )
        except Exception as exc:
            if reader is not None and reader.raised is exc:
                raise
            raise MaasError(f"{method} quantisation failed: {describe(exc)}") from exc
        _check_interface(original, onnx.load(str(target)))
        events = _profiled_run(source, target, _feeds(original, rows), workdir)
        source_ops = {n.name: n.op_type for n in onnx.load(str(prepared)).graph.node if n.name}
        if method == "float16":
            quantized, floats = float16_census(target, source_ops)
        else:
            quantized, floats = int8_census(events, source_ops)
    return QuantizationResult(
        method=method,
        per_channel=per_channel,
        calibration_rows=0 if reader is None or rows is None else len(rows),
        quantized_ops=dict(sorted(quantized.items())),
        float_ops=[{"op_type": op, "nodes": nodes} for op, nodes in sorted(floats.items())],
    )
