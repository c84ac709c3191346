"""TorchScript archives that read or write host files, or reach other machines, are refused
before they load and again from their graphs; ordinary models pass both checks."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from maas.errors import InvalidArtifactError
from maas.protocol.signature import Signature, TensorSpec
from maas.runtimes.base import LoadOptions
from maas.runtimes.torchscript import TorchScriptRuntime
from maas.runtimes.torchscript_ops import check_module, check_source


class ReadsAFile(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        leaked = torch.from_file("/etc/hostname", size=4, dtype=torch.uint8)
        return x + leaked.float().sum()


class ReadsAFileThroughOps(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        leaked: torch.Tensor = torch.ops.aten.from_file("/etc/hostname", None, 4)
        return x + leaked.sum()


class WritesAFile(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.save(x, "/tmp/maas-written-by-a-model")
        return x


class Ordinary(nn.Module):
    """Convolutions, normalisation, control flow and functional calls: what models use."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.gelu(self.head(self.body(x)))
        if y.shape[0] > 1:
            y = torch.softmax(y, dim=1)
        return y


def _save(module: nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(module.eval()), str(path))
    return path


def _load(path: Path) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded: torch.jit.ScriptModule = torch.jit.load(str(path))  # type: ignore[no-untyped-call]  # unannotated
        return loaded


@pytest.mark.parametrize(
    ("module", "operator"),
    [(ReadsAFile(), "from_file"), (ReadsAFileThroughOps(), "from_file"), (WritesAFile(), "save")],
)
def test_file_operators_are_refused_from_the_source_and_from_the_graph(
    tmp_path: Path, module: nn.Module, operator: str
) -> None:
    path = _save(module, tmp_path / "model.pt")
    with pytest.raises(InvalidArtifactError, match=operator):
        check_source(path)
    with pytest.raises(InvalidArtifactError) as caught:
        check_module(_load(path))
    assert caught.value.details["operator"] == f"aten::{operator}"


def test_the_runtime_refuses_such_a_model_before_it_could_run(tmp_path: Path) -> None:
    path = _save(ReadsAFile(), tmp_path / "model.pt")
    signature = Signature((TensorSpec("x", "FP32", (-1, 4)),), (TensorSpec("y", "FP32", (-1, 4)),))
    with pytest.raises(InvalidArtifactError, match="no file, process or network access"):
        TorchScriptRuntime.load(path, LoadOptions(signature=signature))


def test_a_custom_class_in_the_code_is_refused(tmp_path: Path) -> None:
    """``torch.classes`` are C++ objects (process groups, for one): no model needs them."""
    path = _save(Ordinary(), tmp_path / "model.pt")
    patched = tmp_path / "patched.pt"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(patched, "w") as target:
        for member in source.infolist():
            data = source.read(member)
            if "/code/" in member.filename and member.filename.endswith(".py"):
                data += b"\n_x = torch.classes.dist_c10d.ProcessGroup\n"
            target.writestr(member, data)
    with pytest.raises(InvalidArtifactError, match=r"torch\.classes"):
        check_source(patched)


def test_an_ordinary_model_passes_both_checks(tmp_path: Path) -> None:
    path = _save(Ordinary(), tmp_path / "model.pt")
    check_source(path)
    check_module(_load(path))
