"""``maas db``: the registry database's schema."""

from __future__ import annotations

import typer

from maas.cli.console import console, settings
from maas.registry.service import Registry

app = typer.Typer(help="Manage the registry database.", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Apply every pending schema migration (the server also does this on start)."""
    current = settings()
    registry = Registry.from_settings(current, upgrade=False)
    try:
        registry.upgrade()
    finally:
        registry.close()
    console.print(f"database at [bold]{current.resolved_database_url}[/] is up to date")
