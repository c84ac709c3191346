"""Train, evaluate, export and register in one call: the path from data to a served version."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import onnxruntime as ort
import torch

import maas
from maas.errors import InvalidInputError
from maas.protocol.signature import Signature
from maas.registry.entities import ModelVersion
from maas.training.datasets import Dataset, load_digits
from maas.training.evaluation import evaluate
from maas.training.export import export_onnx
from maas.training.signature import onnx_signature
from maas.training.trainer import EpochReport, TrainConfig, predict_logits, train
from maas.training.zoo import ClassifierHead, build_mlp

__all__ = ["DATASETS", "MODELS", "TrainOptions", "VersionRegistrar", "train_and_register"]

DATASETS: Final[tuple[str, ...]] = ("digits",)
MODELS: Final[tuple[str, ...]] = ("mlp",)

_VALIDATION_FRACTION: Final = 0.2
_EXPORT_SAMPLE_ROWS: Final = 16


class VersionRegistrar(Protocol):
    """The one registry call training needs; keeps training off registry internals."""

    def register_version(
        self,
        model_name: str,
        artifact_path: Path,
        /,
        *,
        artifact_format: str,
        signature: Signature,
        metrics: dict[str, Any],
        lineage: dict[str, Any],
        actor: str,
    ) -> ModelVersion: ...


def _check_choice(field_name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InvalidInputError(
            f"{field_name}: unknown {value!r}; choose one of: {', '.join(choices)}",
            {"field": field_name, "value": value, "choices": list(choices)},
        )


@dataclass(frozen=True, slots=True)
class TrainOptions:
    """What to train and under which name to register it; checked on construction."""

    model_name: str = "digits"
    dataset: str = "digits"
    model: str = "mlp"
    config: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        _check_choice("dataset", self.dataset, DATASETS)
        _check_choice("model", self.model, MODELS)


def _lineage(options: TrainOptions, dataset: Dataset) -> dict[str, Any]:
    config = options.config
    hyperparameters = asdict(config)
    seed = hyperparameters.pop("seed")
    hyperparameters["hidden"] = list(config.hidden)
    return {
        "source": "train",
        "dataset": {
            "name": dataset.name,
            "sha256": dataset.content_sha256,
            "train_rows": len(dataset.y_train),
            "validation_rows": len(dataset.y_val),
            "validation_fraction": _VALIDATION_FRACTION,
        },
        "model": options.model,
        "hyperparameters": hyperparameters,
        "seed": seed,
        "libraries": {
            "torch": torch.__version__,
            "onnxruntime": ort.__version__,
            "maas": maas.__version__,
        },
    }


def train_and_register(
    registry: VersionRegistrar,
    options: TrainOptions,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> ModelVersion:
    """Train ``options.model`` on ``options.dataset`` and register the ONNX export.

    The new version carries metrics measured on the held-out split, a signature read
    back from the exported graph, and lineage (dataset hash, hyper-parameters, seed,
    library versions) enough to rerun the training.

    >>> train_and_register(registry, TrainOptions(model_name="digits"))  # doctest: +SKIP
    ModelVersion(model_name='digits', version=1, ...)
    """
    config = options.config
    dataset = load_digits(seed=config.seed, validation_fraction=_VALIDATION_FRACTION)
    model = build_mlp(dataset.num_features, dataset.num_classes, config.hidden, seed=config.seed)
    reports = train(model, dataset, config, on_epoch)
    metrics: dict[str, Any] = evaluate(predict_logits(model, dataset.x_val), dataset.y_val)
    metrics["val_loss"] = reports[-1].val_loss
    sample = torch.from_numpy(dataset.x_val[:_EXPORT_SAMPLE_ROWS].copy())
    with tempfile.TemporaryDirectory(prefix="maas-train-") as workdir:
        onnx_path = Path(workdir) / f"{options.model_name}.onnx"
        export_onnx(ClassifierHead(model), sample, onnx_path, output_names=("logits", "label"))
        return registry.register_version(
            options.model_name,
            onnx_path,
            artifact_format="onnx",
            signature=onnx_signature(onnx_path),
            metrics=metrics,
            lineage=_lineage(options, dataset),
            actor="train",
        )
