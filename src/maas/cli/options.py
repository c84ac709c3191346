"""The options every command shares, defined once so they mean one thing everywhere.

Short flags: ``-n`` a model name, ``-f`` a file to read, ``-o`` where to write, ``-i`` a
request to send, ``-d`` detach (do not follow), ``-q`` print only the resulting id,
``-a`` the alias to move. ``--json`` prints the result as one JSON document.
"""

from __future__ import annotations

from typing import Any

import typer

__all__ = [
    "ALIAS_OPTION",
    "DETACH_OPTION",
    "FORCE_OPTION",
    "JSON_OPTION",
    "MODEL_ARGUMENT",
    "QUIET_OPTION",
    "REASON_OPTION",
    "VERSION_ARGUMENT",
    "group",
]


def group(help_text: str) -> typer.Typer:
    """A command group with the CLI's help formatting (plain, predictable, no markup)."""
    return typer.Typer(help=help_text, no_args_is_help=True, rich_markup_mode=None)


MODEL_ARGUMENT: Any = typer.Argument(..., help="Model name.")
VERSION_ARGUMENT: Any = typer.Argument(..., help="Version number or alias.")
JSON_OPTION: Any = typer.Option(False, "--json", help="Print the result as JSON.")
QUIET_OPTION: Any = typer.Option(
    False, "--quiet", "-q", help="Print only the resulting id (for scripts)."
)
DETACH_OPTION: Any = typer.Option(False, "--detach", "-d", help="Submit and return; do not follow.")
ALIAS_OPTION: Any = typer.Option("production", "--alias", "-a", help="The alias to move.")
FORCE_OPTION: Any = typer.Option(
    False, "--force", help="Move production past a failing validation gate (needs --reason)."
)
REASON_OPTION: Any = typer.Option("", "--reason", help="Why (kept in the audit log).")
