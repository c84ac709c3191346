"""``maas traffic``: a model's traffic policy (canary split, sticky header, shadow)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from maas.cli.console import console, fail
from maas.cli.models import read_document
from maas.cli.options import JSON_OPTION, MODEL_ARGUMENT, group
from maas.cli.render import number, print_json
from maas.cli.target import open_target

__all__ = ["app", "policy_from_options"]

app = group("Show, set and clear a model's traffic policy: canary splits, sticky, shadow.")


def policy_from_options(
    splits: list[str], sticky_header: str | None, shadow: str | None, shadow_fraction: float
) -> dict[str, Any]:
    """The policy document the options describe (validated by the control plane)."""
    split = []
    for text in splits:
        target, separator, weight = text.partition("=")
        if not separator or not target:
            fail(f"--split: expected VERSION=WEIGHT (e.g. 3=10 or production=90), got {text!r}")
        try:
            split.append({"target": target, "weight": float(weight)})
        except ValueError:
            fail(f"--split: the weight in {text!r} is not a number")
    policy: dict[str, Any] = {"split": split}
    if sticky_header:
        policy["sticky_header"] = sticky_header
    if shadow:
        policy["shadow"] = {"target": shadow, "fraction": shadow_fraction}
    return policy


@app.command("show")
def show(name: str = MODEL_ARGUMENT, as_json: bool = JSON_OPTION) -> None:
    """Show the policy, and (from a server) the requests each version got and the shadow's
    comparison with the primary: agreement, largest difference, latency of both."""
    with open_target() as target:
        traffic = target.get_traffic(name)
    if as_json:
        print_json(traffic)
        return
    if traffic.policy is None:
        console.print(f"{name} has no traffic policy: every request goes to its default version")
    else:
        console.print(f"[bold]{name}[/] traffic policy (set by {traffic.actor})")
        console.print_json(json.dumps(traffic.policy))
    serving = traffic.serving
    if serving is None:
        return
    if serving.get("held"):
        console.print(f"[yellow]held:[/] {serving['held']}")
    if serving.get("split"):
        table = Table("version", "weight", "requests", title="split (this server)")
        for row in serving["split"]:
            table.add_row(str(row["version"]), number(row["weight"]), str(row["requests"]))
        console.print(table)
    shadow = serving.get("shadow")
    if shadow:
        table = Table("shadow", "value", title=f"shadow: version {shadow['version']}")
        for key in ("offered", "mirrored", "compared", "agreed", "agreement", "dropped", "errors"):
            table.add_row(key, number(shadow[key]))
        for output, diff in shadow["max_abs_diff"].items():
            table.add_row(f"max |diff| {output}", number(diff))
        for who in ("primary", "shadow"):
            latency = shadow[f"{who}_latency"]
            table.add_row(f"{who} p50 ms", number(latency["p50_ms"]))
        if shadow["last_error"]:
            table.add_row("last error", shadow["last_error"])
        console.print(table)


@app.command("set")
def set_policy(
    name: str = MODEL_ARGUMENT,
    splits: list[str] = typer.Option(
        None, "--split", help="VERSION=WEIGHT, repeatable: --split production=90 --split 4=10."
    ),
    sticky_header: str = typer.Option(
        None,
        "--sticky-header",
        help="Keep callers with the same value of this header on one version.",
    ),
    shadow: str = typer.Option(
        None, "--shadow", help="Copy requests to this version (its answers are compared, not sent)."
    ),
    shadow_fraction: float = typer.Option(
        1.0, "--shadow-fraction", min=0.0, max=1.0, help="Share of requests copied to --shadow."
    ),
    file: Path = typer.Option(
        None,
        "--file",
        "-f",
        exists=True,
        dir_okay=False,
        readable=True,
        help="The policy as a .json or .toml file instead of the options.",
    ),
) -> None:
    """Set the traffic policy of NAME's default route (requests naming a version bypass it).

    Every version it names must load and answer its warm-up request first.
    """
    if file is not None:
        policy = read_document(file)
    else:
        policy = policy_from_options(splits or [], sticky_header, shadow, shadow_fraction)
    with open_target() as target, console.status(f"warming up the versions {name} will use ..."):
        traffic = target.set_traffic(name, policy)
    console.print(f"{name} traffic policy set")
    console.print_json(json.dumps(traffic.policy))


@app.command("clear")
def clear(name: str = MODEL_ARGUMENT) -> None:
    """Remove the policy: every request to the default route goes to the default version."""
    with open_target() as target:
        target.clear_traffic(name)
    console.print(f"{name} has no traffic policy now")
