"""``maas train``: submit a training job, then follow it live until it registers a version."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from maas.cli.console import console, fail
from maas.cli.follow import TERMINAL, follow_job
from maas.cli.options import DETACH_OPTION, QUIET_OPTION
from maas.cli.target import Target, describe, open_target

if TYPE_CHECKING:
    from maas.client import Job

__all__ = ["submit_and_follow", "train"]


def _document_from_flags(**flags: Any) -> dict[str, Any]:
    names = ("epochs", "batch_size", "learning_rate", "seed")
    return {
        "model_name": flags["name"],
        "model": {"name": flags["model"]},
        "dataset": {"kind": flags["dataset"]},
        "hyperparameters": {k: flags[k] for k in names if flags[k] is not None},
    }


def _what(job: Job) -> str:
    """What the job does, in a few words (its spec is the server's canonical document)."""
    spec = job.spec
    kind = spec.get("kind", "train")
    if kind == "quantize":
        return f"quantize {spec['parent']}, {spec['method']}"
    if kind == "prune":
        return f"prune {spec['parent']}, {spec['method']} {spec['amount']:g}"
    if kind == "language-model":
        architecture, steps = spec["model"]["architecture"], spec["hyperparameters"]["steps"]
        return f"language model {architecture} on a {spec['corpus']['kind']} corpus, {steps} steps"
    if kind == "distill":
        return f"distill {spec['teacher']} into {spec['student']['name']}, {job.epochs} epochs"
    return f"{spec['model']['name']} on {spec['dataset']['kind']}, {job.epochs} epochs"


def submit_and_follow(
    target: Target, document: dict[str, Any], *, detach: bool = False, quiet: bool = False
) -> Job:
    """Submit ``document``, then follow the job to its end (unless ``detach``); exit 1 if it
    does not succeed. ``quiet`` prints only the result: the version (or, detached, the job
    id). Shared by ``maas train`` and ``maas quickstart``."""
    job = target.submit_job(document)
    if quiet and detach:
        print(job.id)
        return job
    if not quiet:
        console.print(
            f"job [bold]{job.id}[/] queued on {describe(target)}: {job.model} ({_what(job)})"
        )
    if detach:
        console.print(f"follow it with [bold]maas jobs follow {job.id}[/]")
        return job
    if quiet:
        with console.status(f"training job {job.id} ..."):
            final = _wait(target, job.id)
        if final.state == "succeeded":
            print(final.version)
    else:
        final = follow_job(target, job.id)
    if final.state in ("failed", "cancelled"):
        if quiet:
            console.print(f"job {job.id} {final.state}: {final.error}", style="red")
        raise typer.Exit(1)
    return final


def _wait(target: Target, job_id: int) -> Job:
    while (job := target.get_job(job_id)).state not in TERMINAL:
        time.sleep(0.5)
    return job


def train(
    spec_file: Path = typer.Option(
        None,
        "--file",
        "-f",
        exists=True,
        dir_okay=False,
        readable=True,
        help="A job spec (.yaml, .toml or .json): model, dataset, hyperparameters. "
        "When given, the flags below are ignored (--set still applies).",
    ),
    overrides: list[str] = typer.Option(
        None,
        "--set",
        help="Set any spec field: FIELD=VALUE, repeatable, e.g. "
        "--set hyperparameters.optimizer=sgd --set dataset.kind=csv "
        "--set dataset.path=data.csv --set dataset.label_column=y.",
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
        None, "--lr", min=0.0, help="Learning rate (default 1e-3)."
    ),
    seed: int = typer.Option(None, help="Random seed for split, init and shuffling (default 0)."),
    detach: bool = DETACH_OPTION,
    quiet: bool = QUIET_OPTION,
) -> None:
    """Train a model as a job: evaluate it on held-out data, export ONNX and TorchScript,
    register a new version.

    The job is submitted to the running server (or, with none, run by a worker process
    started here), then followed with a live progress bar and one row per epoch; Ctrl-C
    detaches without cancelling. A spec file (-f) can train mlp, cnn, resnet or your own
    package.module:factory on digits, an .npz file (x, y), a CSV file (a label column) or
    an image folder (one sub-folder per class), with SGD/Adam/AdamW, step or cosine
    schedules and early stopping. A spec file with "kind: language-model" trains a byte-level
    BPE tokenizer and a small GPT-2 or Llama causal LM on a text corpus (maas's own, or a
    UTF-8 file) and registers it as a Hugging Face folder (format hf; serving language models
    is not built yet). It is checked before anything runs: errors name the field.
    With -q only the registered version number is printed (with -d, the job id).
    """
    from maas.jobs.kinds import TrainSpec, load_job, parse_job
    from maas.training.language.spec import LanguageModelSpec
    from maas.training.spec import with_overrides

    if spec_file is not None:
        spec = load_job(spec_file)
        if not isinstance(spec, TrainSpec | LanguageModelSpec):
            fail(f"{spec_file} is a {spec.kind} job: submit it with 'maas optimize {spec.kind}'")
        exclude = {"kind"} if isinstance(spec, TrainSpec) else None
        document = spec.model_dump(mode="json", exclude=exclude)
    else:
        document = _document_from_flags(
            name=name,
            dataset=dataset,
            model=model,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
        )
    if overrides:
        document = with_overrides(document, overrides, Path.cwd())
        parse_job(document)  # refuse a bad field here
    with open_target() as target:
        submit_and_follow(target, document, detach=detach, quiet=quiet)
