"""``maas audit`` and ``maas deployments``: who changed what, and what a server holds."""

from __future__ import annotations

import json

import typer
from rich.markup import escape
from rich.table import Table

from maas.cli.console import console
from maas.cli.options import JSON_OPTION
from maas.cli.render import print_json, when
from maas.cli.target import open_server, open_target

__all__ = ["audit", "deployments"]


def audit(
    model: str = typer.Option(None, "--model", "-m", help="Only this model's events."),
    action: str = typer.Option(
        None, "--action", help="One kind (alias.set) or a family (alias, version, job)."
    ),
    limit: int = typer.Option(50, "--limit", min=1, max=1000, help="How many, newest first."),
    before: int = typer.Option(None, "--before", min=1, help="Only events older than this id."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The audit log, newest first: every change, who made it, and its details."""
    with open_target() as target:
        events = target.audit(model, action=action, limit=limit, before=before)
    if as_json:
        print_json(events)
        return
    if not events:
        console.print("no events")
        return
    table = Table("id", "at", "action", "model", "version", "by", "details", title="audit log")
    for e in events:
        details = escape(json.dumps(e.details, sort_keys=True)) if e.details else ""
        version = "-" if e.version is None else str(e.version)
        table.add_row(str(e.id), when(e.at), e.action, e.model, version, e.actor, details)
    console.print(table)


def deployments(
    model: str = typer.Option(None, "--model", "-m", help="Only this model."),
    as_json: bool = JSON_OPTION,
) -> None:
    """What the server holds: every version loaded, loading or failed, the routes that
    send it traffic, its memory, and why a version cannot serve."""
    with open_server() as target:
        rows = target.deployments(model)
    if as_json:
        print_json(rows)
        return
    table = Table("model", "version", "state", "routes", "resident", "idle s", "reason")
    for d in rows:
        table.add_row(
            d.model,
            "-" if d.version is None else str(d.version),
            d.state,
            ", ".join(d.routes) or "-",
            "-" if d.resident_bytes is None else f"{d.resident_bytes / 2**20:.1f} MiB",
            "-" if d.idle_s is None else f"{d.idle_s:.0f}",
            escape(d.reason or ""),
        )
    console.print(table)
