"""The shared Rich consoles, the one way the CLI reports failure, and its settings."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from maas.config import Settings

__all__ = ["console", "err_console", "fail", "report_error", "settings"]

console = Console()
err_console = Console(stderr=True)


def report_error(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def fail(message: str) -> NoReturn:
    """Print one clear line on stderr and exit non-zero (inside a command)."""
    report_error(message)
    raise typer.Exit(1)


def settings(**overrides: object) -> Settings:
    """Settings from MAAS_* variables and maas.toml, with CLI flags that were given on top."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]  # pydantic validates the overrides
