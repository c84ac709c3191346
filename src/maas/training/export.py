"""Export to ONNX or TorchScript files and prove each computes what eager torch computes."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from maas.errors import InvalidArtifactError, MaasError, describe

__all__ = [
    "OPSET",
    "export_onnx",
    "export_torchscript",
    "load_torchscript",
    "verify_onnx",
    "verify_torchscript",
]

OPSET = 18
"""ONNX opset written; 18 is what torch 2.13's dynamo exporter emits without conversion."""

_MAX_ABS_DIFF = 1e-5


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence third-party noise from the exporter while it runs.

    torch.onnx emits DeprecationWarnings/UserWarnings from its own internals (and
    onnxscript's) that we cannot act on; pytest runs with ``filterwarnings = error``,
    so they would fail every test that exports. Its logger also prints one line per
    missing optional torchvision op. Both are restored on exit.
    """
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_onnx(
    model: nn.Module,
    sample: torch.Tensor,
    path: Path,
    *,
    input_name: str = "input",
    output_names: Sequence[str] = ("logits",),
    max_abs_diff: float = _MAX_ABS_DIFF,
) -> None:
    """Write ``model`` to ``path`` as ONNX with a dynamic batch dim, then verify it.

    ``model`` is switched to eval mode. ``sample`` should hold several rows: the
    verification runs ONNX Runtime on it and raises ``MaasError`` when any output
    differs from torch's by more than ``max_abs_diff``.

    >>> export_onnx(build_mlp(64, 10), torch.rand(8, 64), Path("m.onnx"))  # doctest: +SKIP
    """
    model.eval()
    # torch.export specialises a dim whose example size is 0 or 1; trace with two rows.
    traced = sample if sample.shape[0] >= 2 else sample.expand(2, *sample.shape[1:])
    with _quiet_exporter():
        torch.onnx.export(
            model,
            (traced,),
            str(path),
            input_names=[input_name],
            output_names=list(output_names),
            opset_version=OPSET,
            dynamo=True,
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            external_data=False,  # one file: the registry stores one artifact per version
            verbose=False,
        )
    try:
        onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    except onnx.checker.ValidationError as exc:
        raise InvalidArtifactError(f"exported ONNX model is invalid: {describe(exc)}") from exc
    verify_onnx(model, sample, path, max_abs_diff=max_abs_diff)


def verify_onnx(
    model: nn.Module, sample: torch.Tensor, path: Path, *, max_abs_diff: float = _MAX_ABS_DIFF
) -> float:
    """Run ``sample`` through torch and through ONNX Runtime; return the max abs difference.

    Raises ``MaasError`` when outputs differ by more than ``max_abs_diff`` or in shape,
    so an export that silently changed the maths never reaches the registry.
    """
    model.eval()
    with torch.no_grad():
        result = model(sample)
    expected = [t.numpy() for t in (result if isinstance(result, tuple) else (result,))]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {session.get_inputs()[0].name: sample.numpy()}
    outputs = session.run(None, feeds)
    if len(outputs) != len(expected):
        raise MaasError(
            f"ONNX export check failed: {len(outputs)} outputs, torch gives {len(expected)}"
        )
    return max(
        _compare(np.asarray(a), e, max_abs_diff) for a, e in zip(outputs, expected, strict=True)
    )


def _compare(
    actual: np.ndarray, expected: np.ndarray, max_abs_diff: float, fmt: str = "ONNX"
) -> float:
    if actual.shape != expected.shape:
        raise MaasError(
            f"{fmt} export check failed: output shape {actual.shape} != torch {expected.shape}",
            {f"{fmt.lower()}_shape": list(actual.shape), "torch_shape": list(expected.shape)},
        )
    diff = float(np.max(np.abs(actual.astype(np.float64) - expected))) if expected.size else 0.0
    if not diff <= max_abs_diff:  # also catches NaN
        raise MaasError(
            f"{fmt} export check failed: max abs difference {diff:.3g} from torch "
            f"exceeds {max_abs_diff:.3g}",
            {"max_abs_diff": diff, "tolerance": max_abs_diff},
        )
    return diff


@contextlib.contextmanager
def _quiet_torchscript() -> Iterator[None]:
    """Silence TorchScript's deprecation notices while we trace and load.

    torch 2.13 deprecates ``torch.jit.trace``/``torch.jit.load`` in favour of
    torch.export, but the TorchScript runtime still serves ``.pt`` files; pytest runs
    with ``filterwarnings = error``, so the notices would fail every export. Only
    those notices are ignored, and only inside this block.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"`torch\.jit\.", DeprecationWarning)
        yield


def _outputs(result: torch.Tensor | tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    return [t.detach().numpy() for t in (result if isinstance(result, tuple) else (result,))]


def export_torchscript(
    model: nn.Module,
    sample: torch.Tensor,
    path: Path,
    *,
    max_abs_diff: float = _MAX_ABS_DIFF,
) -> None:
    """Trace ``model`` (switched to eval mode) on ``sample``, save it to ``path``, verify it.

    Tracing records the ops ``sample`` takes, so models with data-dependent control
    flow are not supported. The saved file is reloaded and compared with the eager
    model; ``MaasError`` is raised when any output differs by more than ``max_abs_diff``.

    >>> export_torchscript(build_mlp(64, 10), torch.rand(8, 64), Path("m.pt"))  # doctest: +SKIP
    """
    model.eval()
    with _quiet_torchscript(), torch.no_grad():
        traced = torch.jit.trace(model, (sample,))  # type: ignore[no-untyped-call]  # unannotated
        torch.jit.save(traced, str(path))
    verify_torchscript(model, sample, path, max_abs_diff=max_abs_diff)


def load_torchscript(path: Path) -> torch.jit.ScriptModule:
    """Load a TorchScript file onto the CPU, without torch's deprecation notices.

    Only for files maas wrote itself (a trained version's artifact, read from the store on a
    hash-verified path): a TorchScript archive is a zip that may hold pickled data.
    """
    with _quiet_torchscript():
        loaded: torch.jit.ScriptModule = torch.jit.load(str(path), map_location="cpu")  # type: ignore[no-untyped-call]  # untyped
    return loaded


def verify_torchscript(
    model: nn.Module, sample: torch.Tensor, path: Path, *, max_abs_diff: float = _MAX_ABS_DIFF
) -> float:
    """Run ``sample`` through eager torch and the TorchScript file; return the max abs diff.

    Raises ``MaasError`` on a differing output count, shape, or a difference above
    ``max_abs_diff``, as ``verify_onnx`` does for ONNX files.
    """
    model.eval()
    with _quiet_torchscript(), torch.no_grad():
        archive = str(path)
        loaded = torch.jit.load(archive, map_location="cpu")  # type: ignore[no-untyped-call]  # untyped
        actual = _outputs(loaded(sample))
        expected = _outputs(model(sample))
    if len(actual) != len(expected):
        raise MaasError(
            f"TorchScript export check failed: {len(actual)} outputs, torch gives {len(expected)}"
        )
    return max(
        _compare(a, e, max_abs_diff, "TorchScript") for a, e in zip(actual, expected, strict=True)
    )
