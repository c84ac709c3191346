"""``maas train``: train a model, evaluate it, export ONNX and register a new version."""

from __future__ import annotations

import typer
from rich.table import Table

from maas.cli.console import console, fail, settings
from maas.registry.entities import ModelVersion
from maas.registry.service import Registry


def run_training(
    registry: Registry,
    *,
    name: str = "digits",
    dataset: str = "digits",
    model: str = "mlp",
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    seed: int | None = None,
) -> ModelVersion:
    """Train with a live progress bar; shared by ``maas train`` and ``maas quickstart``."""
    try:
        from maas.cli.progress import epoch_progress
        from maas.training.pipeline import TrainOptions, train_and_register
        from maas.training.trainer import TrainConfig
    except ImportError as exc:
        fail(f"training needs the torch extra ({exc.name} is missing): pip install 'maas[torch]'")
    given = {
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
    }
    config = TrainConfig(**{k: v for k, v in given.items() if v is not None})  # type: ignore[arg-type]  # only fields TrainConfig declares
    options = TrainOptions(model_name=name, dataset=dataset, model=model, config=config)
    with epoch_progress(f"training {name} ({model} on {dataset})", config.epochs) as on_epoch:
        version = train_and_register(registry, options, on_epoch=on_epoch)
    table = Table("metric", "value", title=f"{name} version {version.version} (held-out split)")
    for key, value in version.metrics.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)
    return version


def train(
    dataset: str = typer.Option(
        "digits", help="Dataset: digits (scikit-learn's bundled 8x8 images)."
    ),
    model: str = typer.Option("mlp", help="Model architecture: mlp."),
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
    """Train a model, evaluate it on a held-out split, export ONNX, register a new version."""
    registry = Registry.from_settings(settings())
    try:
        version = run_training(
            registry,
            name=name,
            dataset=dataset,
            model=model,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
        )
    finally:
        registry.close()
    console.print(f"registered [bold]{version.model_name}[/] version [bold]{version.version}[/]")
