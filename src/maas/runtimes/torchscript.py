"""TorchScript runtime: runs ``torch.jit.save`` archives, each instance in a worker process.

A TorchScript archive is a zip, like the ``torch.save`` pickles that maas refuses, so it is
told apart by content: it must hold ``data.pkl`` and compiled code (``code/`` or
``constants.pkl``), and ``torch.jit.load`` (which only rebuilds TorchScript types, never
arbitrary classes) loads it. The archive records no tensor names, so the signature comes
from the registered version through ``LoadOptions.signature``.

An archive is a program: it is checked (``safety.check_archive``) and held to the operator
allowlist of ``torchscript_ops`` before and after it loads, and ``carries_code`` marks
the format, which a server refuses over its API unless told otherwise.
"""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch

from maas.errors import InvalidArtifactError, MaasError, describe
from maas.protocol.datatypes import numpy_dtype
from maas.protocol.signature import Signature
from maas.runtimes.base import LoadOptions, Runtime
from maas.runtimes.safety import check_archive, refuse_executable_formats
from maas.runtimes.torchscript_ops import check_module, check_source

__all__ = ["TorchScriptRuntime"]

_NO_SIGNATURE: Final = (
    "TorchScript models need a signature: give inputs and outputs (names, datatypes, shapes) "
    "when registering the version, since the archive records none"
)


def _is_torchscript_archive(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    has_data = any(n.endswith("/data.pkl") for n in names)
    has_code = any("/code/" in n or n.endswith("/constants.pkl") for n in names)
    return has_data and has_code


def _check_signature(signature: Signature | None) -> Signature:
    if signature is None:
        raise InvalidArtifactError(_NO_SIGNATURE)
    for spec in (*signature.inputs, *signature.outputs):
        if spec.datatype == "BYTES":
            raise InvalidArtifactError(f"tensor {spec.name!r}: TorchScript has no BYTES tensors")
    return signature


class TorchScriptRuntime(Runtime):
    """Runs a TorchScript module on CUDA when available, else CPU, under inference mode."""

    format = "torchscript"
    platform = "pytorch_libtorch"
    releases_gil = False  # the interpreter holds the GIL around each op: use processes
    carries_code = True

    def __init__(
        self, module: torch.jit.ScriptModule, signature: Signature, device: torch.device
    ) -> None:
        super().__init__(signature)
        self._module = module
        self._device = device
        self._input_dtypes = {t.name: numpy_dtype(t.datatype) for t in signature.inputs}
        self._output_dtypes = {t.name: numpy_dtype(t.datatype) for t in signature.outputs}

    @classmethod
    def load(cls, path: Path, options: LoadOptions = LoadOptions()) -> TorchScriptRuntime:
        if not zipfile.is_zipfile(path):
            refuse_executable_formats(path)  # names a plain pickle as such
            raise InvalidArtifactError("not a TorchScript archive (torch.jit.save writes one)")
        check_archive(path)
        if not _is_torchscript_archive(path):
            raise InvalidArtifactError(
                "the zip is not a TorchScript archive (torch.save output holds pickles); "
                "save the model with torch.jit.save(torch.jit.script(model), path)"
            )
        check_source(path)  # before torch.jit.load, which runs the archive's __setstate__
        signature = _check_signature(options.signature)
        if options.intra_op_threads is not None:
            torch.set_num_threads(options.intra_op_threads)  # per process: one instance each
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            with warnings.catch_warnings():
                # torch 2.9+ deprecates TorchScript in favour of torch.export; the archives
                # users upload still load, and the warning is not theirs to act on per load.
                warnings.filterwarnings("ignore", r"`torch\.jit\.load`", DeprecationWarning)
                module = torch.jit.load(  # type: ignore[no-untyped-call]  # unannotated
                    str(path), map_location=device
                )
        except Exception as exc:  # torch raises RuntimeError and others for bad archives
            first_line = describe(exc)  # one line, no server path
            raise InvalidArtifactError(f"not a loadable TorchScript model: {first_line}") from exc
        check_module(module)
        module.eval()
        return cls(module, signature, device)

    def predict(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        args = [self._tensor(spec.name, inputs[spec.name]) for spec in self.signature.inputs]
        with torch.inference_mode():
            result = self._module(*args)
        return self._outputs(result)

    def _tensor(self, name: str, array: np.ndarray) -> torch.Tensor:
        # from_numpy shares memory and warns on read-only arrays (decoded request buffers).
        array = np.asarray(array, dtype=self._input_dtypes[name])
        if not (array.flags.writeable and array.flags.c_contiguous):
            array = np.array(array, order="C", copy=True)
        return torch.from_numpy(array).to(self._device)

    def _outputs(self, result: Any) -> dict[str, np.ndarray]:
        names = [spec.name for spec in self.signature.outputs]
        if isinstance(result, torch.Tensor):
            values: list[Any] = [result]
        elif isinstance(result, dict):
            values = [result.get(name) for name in names]
        elif isinstance(result, tuple | list):
            values = list(result)
        else:
            raise MaasError(f"the TorchScript model returned {type(result).__name__}, not tensors")
        if len(values) != len(names) or not all(isinstance(v, torch.Tensor) for v in values):
            raise MaasError(
                f"the TorchScript model returned {len(values)} outputs; its signature names "
                f"{len(names)} tensors: {', '.join(names)}"
            )
        return {
            name: value.detach().cpu().numpy().astype(self._output_dtypes[name], copy=False)
            for name, value in zip(names, values, strict=True)
        }
