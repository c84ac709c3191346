"""Where a command goes: a maas server (through the SDK) or this configuration's registry.

One rule for every command:

* ``maas --server URL ...`` (or ``MAAS_SERVER``): that server, whatever registry it serves;
* ``maas --local ...``: the registry directly, even if a server runs;
* otherwise this configuration's server (``http://MAAS_HOST:MAAS_PORT``) if it answers
  *and serves this configuration's registry* (the same registry id); if it serves
  another one the command says so in one line and acts on the registry directly (a
  command that needs a server refuses instead); with no server, the registry directly.

Both targets answer the same calls with the same types (``maas.client``), so a command
does not care which it got.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeAlias

from maas.cli.console import err_console, settings
from maas.errors import MaasError, RegistryMismatchError, UnavailableError

if TYPE_CHECKING:  # imported when a command runs, so that `maas --help` starts fast
    from maas.cli.local import LocalTarget
    from maas.client import Client, RegistryInfo

__all__ = ["Target", "TargetChoice", "choose", "describe", "open_server", "open_target"]

Target: TypeAlias = "Client | LocalTarget"
_PROBE_TIMEOUT_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class TargetChoice:
    """What the root options asked for (``maas --server URL`` / ``maas --local``)."""

    server: str | None = None
    local: bool = False


def describe(target: Target) -> str:
    """How messages name a target: the server's URL, or the registry's location."""
    from maas.cli.local import LocalTarget

    if isinstance(target, LocalTarget):
        return target.where
    return f"the server at {target.base_url}"


_chosen = TargetChoice()


def choose(choice: TargetChoice) -> None:
    """Record the root options (``maas --server URL`` / ``--local``) for this command."""
    global _chosen
    _chosen = choice


def _choice() -> TargetChoice:
    return _chosen


def _probe(base_url: str) -> RegistryInfo | None:
    """The registry a server at ``base_url`` serves, or None when nothing maas answers."""
    import httpx

    from maas.client import Client

    try:
        with Client(base_url, timeout_s=_PROBE_TIMEOUT_S) as client:
            return client.registry()
    except (MaasError, httpx.HTTPError):  # nothing answers, or it is not a maas server
        return None


@contextmanager
def open_server() -> Iterator[Client]:
    """The server of this command, for what only a server can answer (inference, what it
    holds): refused, in one line, where the rule above gives none."""
    from maas.client import Client

    with open_target(needs_server=True) as target:
        assert isinstance(target, Client)
        yield target


@contextmanager
def open_target(*, needs_server: bool = False) -> Iterator[Target]:
    """The target of this command (see the module docstring); closed afterwards."""
    from maas.cli.local import LocalTarget
    from maas.client import Client

    choice = _choice()
    current = settings()
    explicit = choice.server or current.server
    if choice.local:
        if needs_server:
            raise UnavailableError("this command needs a running server; leave out --local")
        with LocalTarget(current) as local:
            yield local
        return
    if explicit:
        with Client(explicit.rstrip("/"), timeout_s=600.0) as client:
            yield client
        return
    served = _probe(current.base_url)
    if served is None:
        if needs_server:
            raise UnavailableError(
                f"no maas server answers at {current.base_url}: start `maas serve`, "
                "or point at one with --server URL"
            )
        with LocalTarget(current) as local:
            yield local
        return
    with LocalTarget(current) as local:
        own = local.registry().id
        if served.id == own:
            local.close()
            with Client(current.base_url, timeout_s=600.0, registry_id=own) as client:
                yield client
            return
        if needs_server:
            raise RegistryMismatchError(
                f"the server at {current.base_url} serves another registry ({served.id}) than "
                f"this configuration's ({current.database_display}); point at it with "
                "--server URL if you mean it"
            )
        err_console.print(
            f"note: the server at {current.base_url} serves another registry; acting on "
            f"this configuration's registry at {current.database_display} directly",
            highlight=False,
            soft_wrap=True,
        )
        yield local
