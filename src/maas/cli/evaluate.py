"""``maas evaluate``: measure any registered version on a labelled dataset; audited."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from maas.cli.console import console, fail
from maas.cli.datasets import (
    DATASET_OPTION,
    GRAYSCALE_OPTION,
    IMAGE_SIZE_OPTION,
    LABEL_COLUMN_OPTION,
    SPEC_OPTION,
    read_dataset_spec,
)
from maas.cli.options import JSON_OPTION, MODEL_ARGUMENT, VERSION_ARGUMENT
from maas.cli.render import print_json
from maas.cli.target import Target, open_target

if TYPE_CHECKING:
    from maas.client import Version
    from maas.registry.entities import ModelVersion


class _Artifacts:
    """A version's artifacts fetched through the target (the SDK, or the registry) into a
    temporary folder: evaluation reads files, and the registry may be a server away."""

    def __init__(self, target: Target, folder: Path) -> None:
        self._target = target
        self._folder = folder

    def artifact_path(self, version: ModelVersion, artifact_format: str | None = None) -> Path:
        chosen = artifact_format or version.artifact_format
        path = self._folder / f"{version.model_name}-{version.version}.{chosen}"
        if not path.exists():
            self._target.download(version.model_name, version.version, path, format=chosen)
        return path


def _as_model_version(version: Version) -> ModelVersion:
    from maas.registry.entities import ModelVersion

    return ModelVersion(
        model_name=version.model,
        version=version.version,
        artifact_sha256=version.artifact_sha256,
        artifact_format=version.format,
        size_bytes=version.size_bytes,
        signature=version.signature,
        created_at=version.created_at,
        metrics=version.metrics,
        lineage=version.lineage,
        artifacts={
            f: {"sha256": a.sha256, "size_bytes": a.size_bytes}
            for f, a in version.artifacts.items()
        },
    )


def _number(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _print_report(name: str, version: int, report: dict[str, Any]) -> None:
    dataset = report["dataset"]
    console.print(
        f"[bold]{name}[/] version [bold]{version}[/] on {dataset['name']} "
        f"({dataset['split']} split, {dataset['rows']} rows, sha256 {dataset['sha256'][:12]})"
    )
    from maas.training.report import SCALAR_METRICS

    scalars = Table("metric", "value", title="evaluation")
    for key in SCALAR_METRICS:
        if key in report:
            scalars.add_row(key, _number(report[key]))
    console.print(scalars)
    per_class = Table("class", "precision", "recall", "f1", "roc_auc", "support", title="per class")
    for row in report["per_class"]:
        per_class.add_row(
            row["class"],
            *(_number(row[k]) for k in ("precision", "recall", "f1", "roc_auc")),
            str(row["support"]),
        )
    console.print(per_class)
    names = [row["class"] for row in report["per_class"]]
    matrix = Table("true \\ predicted", *names, title="confusion matrix")
    for label, counts in zip(names, report["confusion_matrix"], strict=True):
        matrix.add_row(label, *(str(count) for count in counts))
    console.print(matrix)


def evaluate(
    name: str = MODEL_ARGUMENT,
    version: str = VERSION_ARGUMENT,
    dataset: str = DATASET_OPTION,
    spec_file: Path = SPEC_OPTION,
    label_column: str = LABEL_COLUMN_OPTION,
    image_size: tuple[int, int] = IMAGE_SIZE_OPTION,
    grayscale: bool = GRAYSCALE_OPTION,
    seed: int = typer.Option(None, help="Split seed (default: the spec's, else 0)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Evaluate a registered version (trained or uploaded ONNX) on a labelled dataset.

    Reports accuracy, macro and per-class precision/recall/F1, one-vs-rest ROC-AUC, the
    confusion matrix, latency at batch 1 and 32, size and (for trained versions)
    parameter count. Rows: the dataset is split as training would split it (same
    validation/test fractions and seed) and the test split is used when it has one
    (a spec's test_path or test_fraction), else the validation split, so a version
    trained on it is measured on rows it never saw. The result is recorded in the audit
    log (version.evaluated); the version's own metrics do not change.
    """
    try:
        from maas.training.version_report import audit_details, evaluate_version, held_out
    except ImportError as exc:
        fail(f"evaluation needs the torch extra ({exc.name} is missing): pip install 'maas[torch]'")
    if importlib.util.find_spec("sklearn") is None:  # the metrics and the splits use it
        fail("evaluation needs the torch extra (sklearn is missing): pip install 'maas[torch]'")
    dataset_spec, spec_seed = read_dataset_spec(
        dataset, spec_file, label_column, image_size, grayscale
    )
    rows = held_out(dataset_spec, seed if seed is not None else (spec_seed or 0))
    with open_target() as target, tempfile.TemporaryDirectory(prefix="maas-evaluate-") as folder:
        found = target.get_version(name, version)
        report = evaluate_version(_Artifacts(target, Path(folder)), _as_model_version(found), rows)
        target.record_evaluation(name, found.version, audit_details(report))
    if as_json:
        print_json(report)
    else:
        _print_report(name, found.version, report)
