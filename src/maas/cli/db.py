"""``maas db``: the registry database's schema."""

from __future__ import annotations

from maas.cli.console import console, settings
from maas.cli.options import group

app = group("Manage the registry database.")


@app.command("upgrade")
def upgrade() -> None:
    """Apply every pending schema migration (the server also does this on start)."""
    from maas.registry.service import Registry

    current = settings()
    registry = Registry.from_settings(current, upgrade=False)
    try:
        registry.upgrade()
    finally:
        registry.close()
    console.print(f"database at [bold]{current.resolved_database_url}[/] is up to date")
