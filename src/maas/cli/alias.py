"""``maas alias``: point names such as production or staging at versions."""

from __future__ import annotations

import typer

from maas.cli.console import console, open_registry
from maas.cli.identity import actor

app = typer.Typer(
    help="Set, move or remove aliases (production, staging, any name).", no_args_is_help=True
)


@app.command("set")
def set_alias(
    name: str = typer.Argument(..., help="Model name."),
    alias: str = typer.Argument(..., help="Alias, e.g. production or staging."),
    version: int = typer.Argument(..., help="Version number the alias should point at."),
    force: bool = typer.Option(
        False, "--force", help="Promote to production even if the validation gate fails."
    ),
    reason: str = typer.Option("", help="Why the gate is forced (required with --force)."),
) -> None:
    """Point ALIAS of model NAME at VERSION (a running server follows within seconds).

    Moving production to a version that fails the model's gate (`maas models gate`) is
    refused with the failed rules listed, unless --force --reason "..." (audited).
    """
    with open_registry() as registry:
        result = registry.aliases.set(
            name, alias, version, actor=actor(), force=force, reason=reason
        )
    console.print(f"{result.model_name}@[bold]{result.name}[/] -> version {result.version}")


@app.command("delete")
def delete_alias(
    name: str = typer.Argument(..., help="Model name."),
    alias: str = typer.Argument(..., help="Alias to remove."),
) -> None:
    """Remove ALIAS from model NAME."""
    with open_registry() as registry:
        registry.aliases.delete(name, alias, actor=actor())
    console.print(f"removed {name}@{alias}")
