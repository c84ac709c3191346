"""Where a command goes: a maas server (through the SDK) or this configuration's registry.

One rule for every command:

* ``maas --server URL ...`` (or ``MAAS_SERVER``): that server, whatever registry it serves;
* ``maas --local ...``: the registry directly, even if a server runs;
* otherwise this configuration's server (``http://MAAS_HOST:MAAS_PORT``) if it answers
  *and serves this configuration's registry* (the same registry id); if it serves
  another one the command says so in one line and acts on the registry directly (a
  command that needs a server refuses instead); with no server, the registry directly.

Both targets answer the same calls with the same types (``maas.client``), so a command
does not care which it got. Every request to a server carries ``MAAS_API_KEY`` (from the
environment or ``maas.toml``, never from the command line, where other users of the
machine could read it) as ``Authorization: Bearer``. A server that refuses to say which
registry it serves without a key (or with this one) is named in one line and the command
acts on the registry directly, as for another registry's server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeAlias

from rich.markup import escape

from maas.cli.console import err_console, settings
from maas.config import Settings
from maas.errors import (
    ForbiddenError,
    MaasError,
    RegistryMismatchError,
    UnauthenticatedError,
    UnavailableError,
)

if TYPE_CHECKING:  # imported when a command runs, so that `maas --help` starts fast
    from maas.cli.local import LocalTarget
    from maas.client import Client, RegistryInfo

__all__ = [
    "Target",
    "TargetChoice",
    "api_key",
    "choose",
    "describe",
    "open_server",
    "open_target",
]

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


def api_key(current: Settings) -> str | None:
    """The key this configuration sends to servers (``MAAS_API_KEY``), None when unset."""
    if current.api_key is None:
        return None
    return current.api_key.get_secret_value().strip() or None


def verify(current: Settings) -> bool | str:
    """What TLS certificates the CLI trusts: ``MAAS_CA_BUNDLE``, else the system's."""
    return str(current.ca_bundle) if current.ca_bundle is not None else True


def _probe(base_url: str, key: str | None, trust: bool | str) -> RegistryInfo | None:
    """The registry a server at ``base_url`` serves, or None when nothing maas answers;
    ``UnauthenticatedError``/``ForbiddenError`` when a maas server there refuses to say."""
    import httpx

    from maas.client import Client

    try:
        with Client(base_url, api_key=key, timeout_s=_PROBE_TIMEOUT_S, verify=trust) as client:
            return client.registry()
    except (UnauthenticatedError, ForbiddenError):
        raise
    except (MaasError, httpx.HTTPError):  # nothing answers, or it is not a maas server
        return None


def _refusal(base_url: str, key: str | None, refused: MaasError) -> str:
    if isinstance(refused, ForbiddenError):  # e.g. a Host it does not serve
        return f"the server at {base_url} refused this command: {refused.message}"
    if key is None:
        return (
            f"the server at {base_url} requires an API key: set MAAS_API_KEY to one "
            "(`maas --local keys create NAME --scope SCOPE` makes one)"
        )
    return f"the server at {base_url} refused the key in MAAS_API_KEY: {refused.message}"


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
    key, trust = api_key(current), verify(current)
    explicit = choice.server or current.server
    if choice.local:
        if needs_server:
            raise UnavailableError("this command needs a running server; leave out --local")
        with LocalTarget(current) as local:
            yield local
        return
    if explicit:
        with Client(explicit.rstrip("/"), api_key=key, timeout_s=600.0, verify=trust) as client:
            yield client
        return
    try:
        served = _probe(current.base_url, key, trust)
    except (UnauthenticatedError, ForbiddenError) as refused:
        if needs_server:
            raise type(refused)(_refusal(current.base_url, key, refused), refused.details) from None
        err_console.print(
            f"note: {escape(_refusal(current.base_url, key, refused))}; acting on this "
            f"configuration's registry at {current.database_display} directly",
            highlight=False,
            soft_wrap=True,
        )
        with LocalTarget(current) as local:
            yield local
        return
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
            with Client(
                current.base_url, api_key=key, timeout_s=600.0, registry_id=own, verify=trust
            ) as client:
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
