"""``maas alias``: list, set, remove aliases (production, staging, any name) and read
their history."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from maas.cli.console import console
from maas.cli.options import (
    FORCE_OPTION,
    JSON_OPTION,
    MODEL_ARGUMENT,
    REASON_OPTION,
    VERSION_ARGUMENT,
    group,
)
from maas.cli.render import print_json, when
from maas.cli.target import open_target

__all__ = ["app"]

app = group("List, set and remove aliases (production, staging, any name); read their history.")

ALIAS_ARGUMENT: Any = typer.Argument(..., help="Alias, e.g. production or staging.")


@app.command("list")
def list_aliases(name: str = MODEL_ARGUMENT, as_json: bool = JSON_OPTION) -> None:
    """List a model's aliases and the versions they point at."""
    with open_target() as target:
        aliases = target.list_aliases(name)
    if as_json:
        print_json(aliases)
        return
    if not aliases:
        console.print(f"{name} has no aliases: set one with [bold]maas alias set[/]")
        return
    table = Table("alias", "version", "moved", title=f"{name} aliases")
    for alias in aliases:
        table.add_row(alias.alias, str(alias.version), when(alias.updated_at))
    console.print(table)


@app.command("set")
def set_alias(
    name: str = MODEL_ARGUMENT,
    alias: str = ALIAS_ARGUMENT,
    version: str = VERSION_ARGUMENT,
    force: bool = FORCE_OPTION,
    reason: str = REASON_OPTION,
) -> None:
    """Point ALIAS of model NAME at VERSION (a number, or another alias to copy).

    The version must load and answer a warm-up request within its signature before the
    alias moves; production must also pass the model's validation gate
    (`maas models gate`) unless --force --reason "..." (audited). `maas promote` is the
    same move, to production by default.
    """
    with open_target() as target, console.status(f"warming up {name} version {version} ..."):
        result = target.set_alias(name, alias, version, force=force, reason=reason)
    console.print(f"{result.model}@[bold]{result.alias}[/] -> version {result.version}")


@app.command("delete")
def delete_alias(name: str = MODEL_ARGUMENT, alias: str = ALIAS_ARGUMENT) -> None:
    """Remove ALIAS from model NAME (refused while its traffic policy names it)."""
    with open_target() as target:
        target.delete_alias(name, alias)
    console.print(f"removed {name}@{alias}")


@app.command("history")
def history(
    name: str = MODEL_ARGUMENT, alias: str = ALIAS_ARGUMENT, as_json: bool = JSON_OPTION
) -> None:
    """Every move of ALIAS, oldest first: what `maas rollback` walks back through."""
    with open_target() as target:
        moves = target.alias_history(name, alias)
    if as_json:
        print_json(moves)
        return
    if not moves:
        console.print(f"{name}@{alias} was never set")
        return
    table = Table("#", "at", "move", "from", "to", "by", "note", title=f"{name}@{alias} history")
    for move in moves:
        note = ("forced: " if move.forced else "") + move.reason
        table.add_row(
            str(move.id),
            when(move.at),
            move.kind,
            "-" if move.previous is None else str(move.previous),
            "-" if move.version is None else str(move.version),
            move.actor,
            note or "",
        )
    console.print(table)
