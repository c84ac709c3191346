"""``maas promote`` and ``maas rollback``: move an alias forward, or back one step."""

from __future__ import annotations

from maas.cli.console import console
from maas.cli.options import (
    ALIAS_OPTION,
    FORCE_OPTION,
    MODEL_ARGUMENT,
    REASON_OPTION,
    VERSION_ARGUMENT,
)
from maas.cli.target import open_target

__all__ = ["promote", "rollback"]


def promote(
    name: str = MODEL_ARGUMENT,
    version: str = VERSION_ARGUMENT,
    alias: str = ALIAS_OPTION,
    force: bool = FORCE_OPTION,
    reason: str = REASON_OPTION,
) -> None:
    """Promote VERSION of model NAME (to production, or --alias).

    The version must pass the model's validation gate (production; unless --force
    --reason) and load and answer a warm-up request within its signature; until then
    the old version keeps serving, and a version that fails is refused with the reason.
    """
    with open_target() as target, console.status(f"warming up {name} version {version} ..."):
        result = target.promote(name, version, alias=alias, force=force, reason=reason)
    console.print(f"{result.model}@[bold]{result.alias}[/] -> version {result.version}")


def rollback(name: str = MODEL_ARGUMENT, alias: str = ALIAS_OPTION) -> None:
    """Move production (or --alias) of NAME back to the version it pointed at before.

    Again walks further back (see `maas alias history`); the version is warmed first.
    """
    with open_target() as target:
        before = next((a.version for a in target.list_aliases(name) if a.alias == alias), None)
        with console.status(f"rolling {name}@{alias} back ..."):
            result = target.rollback(name, alias=alias)
    console.print(
        f"{result.model}@[bold]{result.alias}[/] -> version {result.version}"
        + (f" (was {before})" if before is not None else "")
    )
