"""``maas models``: list, show, upload and download model versions."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from maas.cli.console import console, fail, open_registry
from maas.cli.identity import actor
from maas.control.model_config import parse_model_config
from maas.control.uploads import register_upload
from maas.registry.entities import ModelVersion
from maas.training.compare import compare_reports

app = typer.Typer(
    help="List, show and upload model versions, and download their artifacts.", no_args_is_help=True
)


@app.command("list")
def list_models() -> None:
    """List every model with its versions and aliases."""
    with open_registry() as registry:
        table = Table("model", "versions", "latest", "aliases", title="models")
        for model in registry.list_models():
            versions = registry.list_versions(model.name)
            aliases = ", ".join(
                f"{a.name}->{a.version}" for a in registry.aliases.list_for(model.name)
            )
            latest = str(versions[-1].version) if versions else "-"
            table.add_row(model.name, str(len(versions)), latest, aliases or "-")
    if table.row_count == 0:
        console.print("no models yet: run [bold]maas train[/] or [bold]maas models upload[/]")
    else:
        console.print(table)


@app.command("show")
def show(
    name: str = typer.Argument(..., help="Model name."),
    version: str = typer.Argument(
        None, help="Version number or alias; default: the served one (production, else newest)."
    ),
) -> None:
    """Show one version: signature, metrics, lineage and the aliases on it."""
    with open_registry() as registry:
        found = registry.resolve(name, version)
        aliases = [a.name for a in registry.aliases.list_for(name) if a.version == found.version]
    _print_version(found, aliases)


def _print_version(version: ModelVersion, aliases: list[str]) -> None:
    console.print(
        f"[bold]{version.model_name}[/] version [bold]{version.version}[/]"
        + (f"  aliases: {', '.join(aliases)}" if aliases else "")
    )
    console.print(
        f"format {version.artifact_format}, {version.size_bytes:,} bytes, "
        f"sha256 {version.artifact_sha256}, created {version.created_at:%Y-%m-%d %H:%M:%S %Z}"
    )
    artifacts = Table("format", "size (bytes)", "sha256", "", title="artifacts")
    for artifact_format, artifact in version.artifacts.items():
        served = "served" if artifact_format == version.artifact_format else ""
        artifacts.add_row(
            artifact_format, f"{artifact['size_bytes']:,}", artifact["sha256"], served
        )
    console.print(artifacts)
    signature = Table("", "name", "datatype", "shape", title="signature")
    for kind, specs in (("input", version.signature.inputs), ("output", version.signature.outputs)):
        for spec in specs:
            signature.add_row(kind, spec.name, spec.datatype, str(list(spec.shape)))
    console.print(signature)
    if version.metrics:
        metrics = Table("metric", "value", title="metrics")
        for key, value in version.metrics.items():
            if isinstance(value, int | float):  # the full evaluation report: --json / the API
                metrics.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
        console.print(metrics)
    console.print("[bold]lineage[/]")
    console.print_json(json.dumps(version.lineage, sort_keys=True))


@app.command("upload")
def upload(
    file: Path = typer.Argument(
        ..., help="The model file (ONNX).", exists=True, dir_okay=False, readable=True
    ),
    name: str = typer.Option(..., "--name", "-n", help="Model name; created on its first version."),
    artifact_format: str = typer.Option("onnx", "--format", help="Artifact format."),
    description: str = typer.Option("", help="Description of the model (kept on first upload)."),
    config_file: Path = typer.Option(
        None,
        "--config",
        exists=True,
        dir_okay=False,
        readable=True,
        help="Serving config (.json or .toml); see `maas models config --help`.",
    ),
) -> None:
    """Register FILE as a new version of model NAME after checking that it loads.

    Files that do not load in their runtime, and pickles whatever their name, are refused.
    """
    with open_registry() as registry:
        version = register_upload(
            registry,
            name,
            file,
            artifact_format=artifact_format,
            actor=actor(),
            lineage={"filename": file.name},
            config=read_config_file(config_file) if config_file else None,
            description=description,
        )
    console.print(
        f"registered [bold]{version.model_name}[/] version [bold]{version.version}[/] "
        f"(sha256 {version.artifact_sha256[:12]})"
    )


_SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}


@app.command("download")
def download(
    name: str = typer.Argument(..., help="Model name."),
    version: str = typer.Argument(..., help="Version number or alias."),
    artifact_format: str = typer.Option(
        None, "--format", help="Which artifact (e.g. torchscript); default: the served one."
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="File to write, or a folder to write NAME-VERSION.EXT in."
    ),
) -> None:
    """Copy one of a version's artifacts out of the store (checked against its sha256)."""
    with open_registry() as registry:
        found = registry.resolve(name, version)
        source = registry.artifact_path(found, artifact_format)
    chosen = artifact_format or found.artifact_format
    target = output
    if output.is_dir():
        target = output / f"{name}-{found.version}{_SUFFIXES.get(chosen, '.' + chosen)}"
    shutil.copyfile(source, target)
    console.print(f"wrote {chosen} artifact of {name} version {found.version} to {target}")


def read_config_file(path: Path) -> dict[str, Any]:
    """A config document from a .json or .toml file."""
    try:
        text = path.read_text()
        document = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        fail(f"cannot read config file {path}: {exc}")
    if not isinstance(document, dict):
        fail(f"config file {path} must hold an object")
    return document


@app.command("config")
def config(
    name: str = typer.Argument(..., help="Model name."),
    version: str = typer.Argument(..., help="Version number or alias."),
    set_file: Path = typer.Option(
        None,
        "--set",
        exists=True,
        dir_okay=False,
        readable=True,
        help="A .json or .toml config to record as the version's next revision.",
    ),
) -> None:
    """Show a version's serving config, or change it with --set (a running server reloads it).

    Fields: batching.max_batch_size, batching.max_queue_delay_s,
    batching.preferred_batch_sizes, batching.max_queue_size, batching.default_timeout_s,
    instances.count, instances.kind (auto|thread|process), instances.intra_op_threads,
    inputs/outputs (signature overrides).
    """
    with open_registry() as registry:
        found = registry.resolve(name, version)
        if set_file is not None:
            document = read_config_file(set_file)
            parse_model_config(document)
            registry.set_config(name, found.version, document, actor=actor())
        revision = registry.get_config(name, found.version)
    effective = parse_model_config(revision.config if revision else None)
    number = revision.revision if revision else 0
    console.print(f"{name} version {found.version}, config revision {number}")
    console.print_json(effective.model_dump_json())


@app.command("compare")
def compare(
    name: str = typer.Argument(..., help="Model name."),
    first: str = typer.Argument(..., help="Version number or alias."),
    second: str = typer.Argument(..., help="Version number or alias."),
) -> None:
    """Show two versions' metrics side by side, with the difference (second - first)."""
    with open_registry() as registry:
        a, b = registry.resolve(name, first), registry.resolve(name, second)
    table = Table(
        "metric",
        f"version {a.version}",
        f"version {b.version}",
        "difference",
        title=f"{name}: version {a.version} vs {b.version}",
    )
    for metric, left, right, delta in compare_reports(a.metrics, b.metrics):
        table.add_row(metric, _number(left), _number(right), _number(delta, signed=True))
    if table.row_count == 0:
        console.print("neither version has metrics to compare")
        return
    console.print(table)


def _number(value: object, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:+.4f}" if signed else f"{value:.4f}"
    return f"{value:+}" if signed and isinstance(value, int) else str(value)


@app.command("gate")
def gate(
    name: str = typer.Argument(..., help="Model name."),
    set_file: Path = typer.Option(
        None,
        "--set",
        exists=True,
        dir_okay=False,
        readable=True,
        help='A .json or .toml file: {"rules": [{"metric": "accuracy", "min": 0.95}, ...]}.',
    ),
) -> None:
    """Show the validation gate a version must pass to become production, or set it.

    Rules: {"metric": M, "min": X} | {"metric": M, "max": X} |
    {"metric": M, "max_drop_vs_production": X}. An empty list removes the gate.
    """
    with open_registry() as registry:
        if set_file is not None:
            rules = read_config_file(set_file).get("rules")
            registry.set_gate(name, rules, actor=actor())
        current = registry.get_gate(name)
    if not current:
        console.print(f"{name} has no validation gate")
        return
    console.print_json(json.dumps({"rules": current}))
