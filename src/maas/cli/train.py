"""``maas train``: train a model, evaluate it, export ONNX and register a new version."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from maas.cli.console import console, fail, open_registry
from maas.registry.entities import ModelVersion
from maas.registry.service import Registry

if TYPE_CHECKING:
    from maas.training.spec import JobSpec


def _spec_from_flags(**flags: object) -> JobSpec:
    from maas.training.pipeline import TrainOptions
    from maas.training.trainer import TrainConfig

    names = ("epochs", "batch_size", "learning_rate", "seed")
    config = TrainConfig(**{k: flags[k] for k in names if flags[k] is not None})  # type: ignore[arg-type]  # only fields TrainConfig declares
    return TrainOptions(
        model_name=str(flags["name"]),
        dataset=str(flags["dataset"]),
        model=str(flags["model"]),
        config=config,
    ).to_spec()


def run_training(registry: Registry, spec: JobSpec | None = None, **flags: object) -> ModelVersion:
    """Train with a live progress bar; shared by ``maas train`` and ``maas quickstart``."""
    try:
        from maas.cli.progress import epoch_progress
        from maas.training.pipeline import train_job
    except ImportError as exc:
        fail(f"training needs the torch extra ({exc.name} is missing): pip install 'maas[torch]'")
    if spec is None:
        defaults = {"name": "digits", "dataset": "digits", "model": "mlp"}
        spec = _spec_from_flags(
            **{
                **defaults,
                "epochs": None,
                "batch_size": None,
                "learning_rate": None,
                "seed": None,
                **flags,
            }
        )
    title = f"training {spec.model_name} ({spec.model.name} on {spec.dataset.kind})"
    with epoch_progress(title, spec.hyperparameters.epochs) as on_epoch:
        version = train_job(registry, spec, on_epoch=on_epoch)
    table = Table("metric", "value", title=f"{spec.model_name} version {version.version}")
    for key, value in version.metrics.items():
        if isinstance(value, int | float):
            table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)
    return version


def train(
    spec_file: Path = typer.Option(
        None,
        "--file",
        "-f",
        exists=True,
        dir_okay=False,
        readable=True,
        help="A job spec (.yaml, .toml or .json): model, dataset, hyperparameters. "
        "When given, the flags below are ignored.",
    ),
    dataset: str = typer.Option(
        "digits", help="Dataset: digits (scikit-learn's bundled 8x8 images)."
    ),
    model: str = typer.Option("mlp", help="Model architecture: mlp, cnn or resnet."),
    name: str = typer.Option(
        "digits", "--name", "-n", help="Register the result under this model name."
    ),
    epochs: int = typer.Option(None, min=1, help="Training epochs (default 30)."),
    batch_size: int = typer.Option(None, min=1, help="Mini-batch size (default 64)."),
    learning_rate: float = typer.Option(
        None, "--lr", min=0.0, help="Adam learning rate (default 1e-3)."
    ),
    seed: int = typer.Option(None, help="Random seed for split, init and shuffling (default 0)."),
) -> None:
    """Train a model, evaluate it on a held-out split, export ONNX, register a new version.

    A spec file (-f) can train mlp, cnn, resnet or your own package.module:factory on
    digits, an .npz file (x, y), a CSV file (a label column) or an image folder (one
    sub-folder per class), with SGD/Adam/AdamW, step or cosine schedules and early
    stopping. It is checked before anything runs: errors name the field.
    """
    with open_registry() as registry:
        spec = None
        if spec_file is not None:
            try:
                from maas.training.spec import load_spec
            except ImportError as exc:
                fail(
                    f"training needs the torch extra ({exc.name} is missing): "
                    "pip install 'maas[torch]'"
                )
            spec = load_spec(spec_file)
        version = run_training(
            registry,
            spec,
            name=name,
            dataset=dataset,
            model=model,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
        )
    console.print(f"registered [bold]{version.model_name}[/] version [bold]{version.version}[/]")
