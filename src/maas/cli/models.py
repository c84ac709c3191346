"""``maas models``: list, show, upload, download, archive, configure, compare, gate, set
an input reference, and load or unload models."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from maas.cli.console import console, fail
from maas.cli.drift import reference
from maas.cli.options import (
    JSON_OPTION,
    MODEL_ARGUMENT,
    QUIET_OPTION,
    REASON_OPTION,
    VERSION_ARGUMENT,
    group,
)
from maas.cli.render import number, print_json, when
from maas.cli.target import open_target
from maas.training.compare import compare_reports

if TYPE_CHECKING:
    from maas.client import Version

__all__ = ["app", "read_document"]

app = group(
    "List, show, upload, download, archive and configure models and versions; set their "
    "input references for drift."
)

FILE_OPTION: Any = typer.Option(
    None, "--file", "-f", exists=True, dir_okay=False, readable=True, help="A .json or .toml file."
)
SET_OPTION: Any = typer.Option(
    None, "--set", help="FIELD=VALUE, repeatable, e.g. --set batching.max_batch_size=16."
)


def read_document(path: Path) -> dict[str, Any]:
    """A JSON or TOML object from a file."""
    try:
        text = path.read_text()
        document = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        fail(f"cannot read {path}: {exc}")
    if not isinstance(document, dict):
        fail(f"{path} must hold an object")
    return document


@app.command("list")
def list_models(as_json: bool = JSON_OPTION) -> None:
    """List every model with its versions and aliases."""
    with open_target() as target:
        models = target.list_models()
    if as_json:
        print_json(models)
        return
    if not models:
        console.print("no models yet: run [bold]maas train[/] or [bold]maas models upload[/]")
        return
    table = Table("model", "versions", "latest", "aliases", title="models")
    for model in models:
        aliases = ", ".join(f"{a}->{v}" for a, v in sorted(model.aliases.items()))
        latest = str(model.versions[-1]) if model.versions else "-"
        table.add_row(model.name, str(len(model.versions)), latest, aliases or "-")
    console.print(table)


@app.command("versions")
def versions(
    name: str = MODEL_ARGUMENT,
    include_archived: bool = typer.Option(False, "--all", help="Include archived versions."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List a model's versions (in service; --all: archived ones too)."""
    with open_target() as target:
        found = target.list_versions(name, include_archived=include_archived)
        aliases = target.get_model(name).aliases
    if as_json:
        print_json(found)
        return
    table = Table("version", "format", "size (bytes)", "accuracy", "aliases", "created", "state")
    for v in found:
        on = ", ".join(sorted(a for a, n in aliases.items() if n == v.version))
        table.add_row(
            str(v.version),
            v.format,
            f"{v.size_bytes:,}",
            number(v.metrics.get("accuracy")),
            on or "-",
            when(v.created_at),
            "archived" if v.archived else "in service",
        )
    console.print(table)


@app.command("show")
def show(
    name: str = MODEL_ARGUMENT,
    version: str = typer.Argument(
        None, help="Version number or alias; default: the served one (production, else newest)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show one version: signature, metrics, lineage and the aliases on it."""
    with open_target() as target:
        found = target.get_version(name, version)
        aliases = [a for a, n in target.get_model(name).aliases.items() if n == found.version]
    if as_json:
        print_json(found)
        return
    _print_version(found, sorted(aliases))


def _print_version(version: Version, aliases: list[str]) -> None:
    console.print(
        f"[bold]{version.model}[/] version [bold]{version.version}[/]"
        + (f"  aliases: {', '.join(aliases)}" if aliases else "")
        + (f"  [red]archived[/] {when(version.archived.at)}" if version.archived else "")
    )
    console.print(
        f"format {version.format}, {version.size_bytes:,} bytes, "
        f"sha256 {version.artifact_sha256}, created {when(version.created_at)}"
    )
    artifacts = Table("format", "size (bytes)", "sha256", "", title="artifacts")
    for artifact_format, artifact in version.artifacts.items():
        served = "served" if artifact_format == version.format else ""
        artifacts.add_row(artifact_format, f"{artifact.size_bytes:,}", artifact.sha256, served)
    console.print(artifacts)
    signature = Table("", "name", "datatype", "shape", title="signature")
    for kind, specs in (("input", version.signature.inputs), ("output", version.signature.outputs)):
        for spec in specs:
            signature.add_row(kind, spec.name, spec.datatype, str(list(spec.shape)))
    console.print(signature)
    scalars = {k: v for k, v in version.metrics.items() if isinstance(v, int | float)}
    if scalars:  # the full evaluation report: --json
        metrics = Table("metric", "value", title="metrics")
        for key, value in scalars.items():
            metrics.add_row(key, number(value))
        console.print(metrics)
    console.print("[bold]lineage[/]")
    console.print_json(json.dumps(version.lineage, sort_keys=True))


@app.command("upload")
def upload(
    file: Path = typer.Argument(
        ...,
        help="The model file (ONNX; TorchScript or skops with --format).",
        exists=True,
        dir_okay=False,
        readable=True,
    ),
    name: str = typer.Option(..., "--name", "-n", help="Model name; created on its first version."),
    artifact_format: str = typer.Option("onnx", "--format", help="onnx, torchscript or skops."),
    description: str = typer.Option("", help="Description of the model (kept on first upload)."),
    config_file: Path = typer.Option(
        None,
        "--config",
        exists=True,
        dir_okay=False,
        readable=True,
        help="Serving config (.json or .toml); see `maas models config --help`.",
    ),
    quiet: bool = QUIET_OPTION,
) -> None:
    """Register FILE as a new version of model NAME after checking that it loads.

    Files that do not load in their runtime, and pickles whatever their name, are refused.
    """
    config = read_document(config_file) if config_file else None
    with open_target() as target:
        version = target.upload(
            name, file, format=artifact_format, config=config, description=description
        )
    if quiet:
        print(version.version)
        return
    console.print(
        f"registered [bold]{version.model}[/] version [bold]{version.version}[/] "
        f"(sha256 {version.artifact_sha256[:12]})"
    )


@app.command("download")
def download(
    name: str = MODEL_ARGUMENT,
    version: str = VERSION_ARGUMENT,
    artifact_format: str = typer.Option(
        None, "--format", help="Which artifact (e.g. torchscript); default: the served one."
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="File to write, or a folder to write NAME-VERSION.EXT in."
    ),
) -> None:
    """Copy one of a version's artifacts out of the registry (checked against its sha256)."""
    with open_target() as target:
        written = target.download(name, version, output, format=artifact_format)
    console.print(f"wrote {name} version {version} to {written}")


@app.command("archive")
def archive(
    name: str = MODEL_ARGUMENT,
    version: str = VERSION_ARGUMENT,
    reason: str = REASON_OPTION,
) -> None:
    """Take a version out of service: no longer served or listed (see --all); its artifacts
    are deleted when no other version uses them; the audit log keeps its history.

    Refused while an alias or the model's traffic policy points at it.
    """
    with open_target() as target:
        archived = target.archive(name, version, reason=reason)
    console.print(f"archived {name} version {archived.version}")


@app.command("config")
def config(
    name: str = MODEL_ARGUMENT,
    version: str = VERSION_ARGUMENT,
    file: Path = FILE_OPTION,
    assignments: list[str] = SET_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Show a version's serving config, or change it (-f FILE, --set FIELD=VALUE); a
    running server applies a change without dropping requests.

    Fields: batching.max_batch_size, batching.max_queue_delay_s,
    batching.preferred_batch_sizes, batching.max_queue_size, batching.default_timeout_s,
    instances.count, instances.kind (auto|thread|process), instances.intra_op_threads,
    instances.spinning,
    warmup.enabled, warmup.shapes (input -> shape), inputs/outputs (signature overrides).
    """
    from maas.training.spec import with_overrides

    with open_target() as target:
        if file is not None or assignments:
            document = read_document(file) if file is not None else {}
            if assignments:
                if file is None:  # start from the version's own config, not the defaults
                    current = target.get_config(name, version)
                    document = current.config if current.revision else {}
                document = with_overrides(document, assignments, Path.cwd())
            result = target.set_config(name, version, document)
        else:
            result = target.get_config(name, version)
    if as_json:
        print_json(result)
        return
    console.print(f"{name} version {result.version}, config revision {result.revision}")
    console.print_json(json.dumps(result.config))


app.command("reference")(reference)


@app.command("compare")
def compare(
    name: str = MODEL_ARGUMENT,
    first: str = VERSION_ARGUMENT,
    second: str = VERSION_ARGUMENT,
    as_json: bool = JSON_OPTION,
) -> None:
    """Show two versions' metrics side by side, with the difference (second - first)."""
    with open_target() as target:
        a, b = target.get_version(name, first), target.get_version(name, second)
    rows = compare_reports(a.metrics, b.metrics)
    if as_json:
        print_json([{"metric": m, "first": x, "second": y, "difference": d} for m, x, y, d in rows])
        return
    if not rows:
        console.print("neither version has metrics to compare")
        return
    table = Table(
        "metric",
        f"version {a.version}",
        f"version {b.version}",
        "difference",
        title=f"{name}: version {a.version} vs {b.version}",
    )
    for metric, left, right, delta in rows:
        table.add_row(metric, number(left), number(right), number(delta, signed=True))
    console.print(table)
    for parent, child in ((a, b), (b, a)):
        if _made_from(child, parent):
            _print_optimization(child)


_SIDE_BY_SIDE: tuple[tuple[str, str], ...] = (
    ("accuracy", "delta"),
    ("f1_macro", "delta"),
    ("latency_ms_per_sample_batch_1", "latency_ratio_batch_1"),
    ("latency_ms_per_sample_batch_32", "latency_ratio_batch_32"),
    ("throughput_per_s_batch_32", "throughput_ratio_batch_32"),
    ("size_bytes", "size_ratio"),
    ("parameter_count", "parameter_ratio"),
)


def _made_from(child: Version, parent: Version) -> bool:
    """Whether ``child`` is an optimisation of ``parent`` (its report measured both)."""
    made_from = child.lineage.get("parent") or {}
    return (
        "optimization" in child.metrics
        and made_from.get("model") == parent.model
        and made_from.get("version") == parent.version
    )


def _print_optimization(child: Version) -> None:
    """The optimisation report: both versions measured by the job on the same rows and machine
    (the table above compares what each version recorded when it was made)."""
    report = child.metrics["optimization"]
    parent, candidate = report["parent"], report["candidate"]
    table = Table(
        "metric",
        f"parent {child.lineage['parent']['version']}",
        f"version {child.version}",
        "change",
        title=f"{report['method']}: measured side by side on {report['dataset']['rows']} "
        f"{report['dataset']['split']} rows of {report['dataset']['name']}",
    )
    for metric, change in _SIDE_BY_SIDE:
        if change == "delta":
            shown = number(report["delta"].get(metric), signed=True)
        else:
            ratio = report["ratio"].get(change)
            shown = "" if ratio is None else f"x{ratio:.3f}"
        table.add_row(metric, number(parent.get(metric)), number(candidate.get(metric)), shown)
    table.add_row("agreement with the parent", "", number(report["agreement"]), "")
    console.print(table)
    left = report.get("details", {}).get("float_ops") or []
    if left:
        ops = ", ".join(f"{op['op_type']} ({len(op['nodes'])})" for op in left)
        console.print(f"left in float: {ops}")


@app.command("gate")
def gate(
    name: str = MODEL_ARGUMENT,
    file: Path = typer.Option(
        None,
        "--file",
        "-f",
        exists=True,
        dir_okay=False,
        readable=True,
        help='A .json or .toml file: {"rules": [{"metric": "accuracy", "min": 0.95}, ...]}.',
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show the validation gate a version must pass to become production, or set it (-f).

    Rules: {"metric": M, "min": X} | {"metric": M, "max": X} |
    {"metric": M, "max_drop_vs_production": X} | {"metric": M, "max_drop_vs_parent": X}
    (an optimised version against the parent its report measured it with). An empty list
    removes the gate.
    """
    with open_target() as target:
        if file is not None:
            target.set_gate(name, read_document(file).get("rules"))  # type: ignore[arg-type]  # the server checks the rules
        rules = target.get_gate(name)
    if as_json:
        print_json({"rules": rules})
    elif not rules:
        console.print(f"{name} has no validation gate")
    else:
        console.print_json(json.dumps({"rules": rules}))


@app.command("load")
def load(name: str = MODEL_ARGUMENT) -> None:
    """Serve the model again after an unload; waits until its default version is warm."""
    with open_target() as target, console.status(f"loading {name} ..."):
        state = target.load(name)
    console.print(f"{state.model} is {state.state}")


@app.command("unload")
def unload(name: str = MODEL_ARGUMENT) -> None:
    """Stop serving the model (every server sharing the registry lets it go) until loaded."""
    with open_target() as target:
        state = target.unload(name)
    console.print(f"{state.model} is {state.state}")
