"""``maas optimize quantize|prune|distill``: make a smaller, faster version of a registered one.

Each is a job like training: submitted to the running server (or, with none, run by a worker
process started here), followed live, cancellable with ``maas jobs cancel``, and registered
as a new version whose lineage names its parent and whose report measures both side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from maas.cli.options import DETACH_OPTION, QUIET_OPTION, group
from maas.cli.target import open_target
from maas.cli.train import submit_and_follow

__all__ = ["app"]

app = group(
    "Quantise, prune or distil a registered version into a new version, with a report that "
    "measures it against its parent on the same held-out rows. Follow with 'maas jobs follow', "
    "compare with 'maas models compare NAME PARENT NEW', gate with 'max_drop_vs_parent'."
)

FILE_OPTION: Any = typer.Option(
    None,
    "--file",
    "-f",
    exists=True,
    dir_okay=False,
    readable=True,
    help="A job file (.yaml, .toml, .json) with every field; the flags add to it (--set wins).",
)
SET_OPTION: Any = typer.Option(
    None,
    "--set",
    help="Set any field: FIELD=VALUE, repeatable, e.g. --set calibration.kind=npz "
    "--set calibration.path=rows.npz --set evaluation.test_fraction=0.2.",
)
NAME_OPTION: Any = typer.Option(
    None, "--name", "-n", help="Register the result under this model (default: the parent's)."
)


def _submit(
    kind: str,
    flags: dict[str, Any],
    spec_file: Path | None,
    overrides: list[str] | None,
    *,
    detach: bool,
    quiet: bool,
) -> None:
    from maas.jobs.kinds import load_job, parse_job
    from maas.training.spec import with_overrides

    document: dict[str, Any] = {}
    if spec_file is not None:
        document = load_job(spec_file).model_dump(mode="json", exclude_none=True)
    document["kind"] = kind
    for key, value in flags.items():
        if isinstance(value, dict) and isinstance(document.get(key), dict):
            document[key] = {**document[key], **value}
        elif value is not None:
            document[key] = value
    if overrides:
        document = with_overrides(document, overrides, Path.cwd())
    document = parse_job(document).model_dump(mode="json", exclude_none=True)  # refuse here
    with open_target() as target:
        submit_and_follow(target, document, detach=detach, quiet=quiet)


@app.command("quantize")
def quantize(
    parent: str = typer.Argument(..., help="The version to quantise: NAME:VERSION or NAME:ALIAS."),
    method: str = typer.Option(
        None,
        help="dynamic (the default: int8 weights, activations quantised on the fly), static "
        "(int8 weights and activations, ranges calibrated on data) or float16 (for GPUs).",
    ),
    per_channel: bool = typer.Option(
        None, "--per-channel/--per-tensor", help="One int8 scale per output channel."
    ),
    calibration_rows: int = typer.Option(
        None,
        min=1,
        help="Static: calibration rows (default 512) from the calibration data's "
        "train split (default: the parent's training data; --set calibration.* to change).",
    ),
    calibration_method: str = typer.Option(
        None, help="Static: minmax (default), entropy or percentile."
    ),
    exclude_op: list[str] = typer.Option(
        None, "--exclude-op", help="An ONNX op type to leave in float, repeatable."
    ),
    name: str = NAME_OPTION,
    spec_file: Path = FILE_OPTION,
    overrides: list[str] = SET_OPTION,
    detach: bool = DETACH_OPTION,
    quiet: bool = QUIET_OPTION,
) -> None:
    """Quantise a version's ONNX model to int8 (or float16) with ONNX Runtime.

    The report lists the operators left in float. Static quantisation calibrates on
    the parent's own training data unless told otherwise; every method is measured against
    the parent on the parent's held-out rows.
    """
    flags = {
        "parent": parent,
        "method": method,
        "per_channel": per_channel,
        "calibration_rows": calibration_rows,
        "calibration_method": calibration_method,
        "exclude_op_types": exclude_op or None,
        "model_name": name,
    }
    _submit("quantize", flags, spec_file, overrides, detach=detach, quiet=quiet)


@app.command("prune")
def prune(
    parent: str = typer.Argument(..., help="The version to prune: NAME:VERSION or NAME:ALIAS."),
    method: str = typer.Option(
        None,
        help="structured (the default: remove whole channels, a smaller and faster model) or "
        "unstructured (zero the smallest weights: same size and speed on CPU).",
    ),
    amount: float = typer.Option(
        None,
        min=0.0,
        max=1.0,
        help="structured: the fraction of parameters to remove; unstructured: of weights "
        "zeroed (default 0.5).",
    ),
    fine_tune_epochs: int = typer.Option(
        None,
        min=1,
        help="Fine-tune this many epochs after pruning (on the parent's training "
        "data; default: no fine-tuning).",
    ),
    learning_rate: float = typer.Option(
        None, "--lr", min=0.0, help="Fine-tuning learning rate (default 1e-3)."
    ),
    name: str = NAME_OPTION,
    spec_file: Path = FILE_OPTION,
    overrides: list[str] = SET_OPTION,
    detach: bool = DETACH_OPTION,
    quiet: bool = QUIET_OPTION,
) -> None:
    """Prune a version trained by maas (it needs its TorchScript weights), export it again
    to ONNX and TorchScript (each checked against torch) and measure it against its parent."""
    fine_tune: dict[str, Any] | None = None
    if fine_tune_epochs is not None or learning_rate is not None:
        fine_tune = {"epochs": fine_tune_epochs, "learning_rate": learning_rate}
        fine_tune = {k: v for k, v in fine_tune.items() if v is not None}
    flags = {
        "parent": parent,
        "method": method,
        "amount": amount,
        "fine_tune": fine_tune,
        "model_name": name,
    }
    _submit("prune", flags, spec_file, overrides, detach=detach, quiet=quiet)


@app.command("distill")
def distill(
    teacher: str = typer.Argument(..., help="The teacher version: NAME:VERSION or NAME:ALIAS."),
    student: str = typer.Option(
        None,
        help="The student: a zoo model (mlp, the default; cnn, resnet) or package.module:factory.",
    ),
    epochs: int = typer.Option(None, min=1, help="Training epochs (default 30)."),
    temperature: float = typer.Option(
        None, min=0.0, help="Softens both sides' outputs (default 2)."
    ),
    alpha: float = typer.Option(
        None,
        min=0.0,
        max=1.0,
        help="Weight of the teacher's soft targets; 1 - alpha: the labels (default 0.5).",
    ),
    name: str = NAME_OPTION,
    spec_file: Path = FILE_OPTION,
    overrides: list[str] = SET_OPTION,
    detach: bool = DETACH_OPTION,
    quiet: bool = QUIET_OPTION,
) -> None:
    """Train a student model on a teacher version's softened outputs and the labels (the
    teacher's training data by default; --set dataset.* to change), then measure it
    against the teacher. Student options: --set student.options.hidden=[32]."""
    flags = {
        "teacher": teacher,
        "student": None if student is None else {"name": student},
        "hyperparameters": None if epochs is None else {"epochs": epochs},
        "temperature": temperature,
        "alpha": alpha,
        "model_name": name,
    }
    _submit("distill", flags, spec_file, overrides, detach=detach, quiet=quiet)
