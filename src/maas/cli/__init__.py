"""The ``maas`` command: one module per command group (Typer + Rich)."""
