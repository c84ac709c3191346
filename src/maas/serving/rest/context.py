"""What every management route needs: the control plane, this server's deployments, and
the caller's identity for the audit log."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

from starlette.requests import Request

from maas.control import ControlPlane
from maas.control.access import Scope
from maas.serving.deployments import Deployments
from maas.serving.rest.access import RouteAccess

__all__ = ["ApiContext", "actor"]

P = ParamSpec("P")
T = TypeVar("T")


def actor(request: Request) -> str:
    """Who the audit log records: the caller's API key, or (a server without keys) the
    caller's address."""
    principal = getattr(request.state, "principal", None)
    if principal is not None:
        return str(principal.actor)
    client = request.client
    return f"api:{client.host}" if client is not None else "api"


@dataclass(frozen=True, slots=True)
class ApiContext:
    """What the management routes share. ``management`` bounds the control-plane calls
    running at once and ``uploads`` the upload bodies being read and checked: management
    work (loading an upload to validate it, reading a registry) takes CPU and memory that
    inference needs, so a flood of it waits its turn instead (uploads beyond the bound
    are not read: TCP holds the bytes back)."""

    control: ControlPlane
    deployments: Deployments
    access: RouteAccess
    max_upload_bytes: int
    allow_code_artifacts: bool = False
    management: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(4))
    uploads: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))

    def may_upload_code(self, request: Request) -> bool:
        """Whether this caller may upload a format whose files are programs: the server
        allows them, and the caller's key holds ``code`` (or the server runs without keys)."""
        if not self.allow_code_artifacts:
            return False
        principal = getattr(request.state, "principal", None)
        return principal is None or Scope.CODE in principal.granted

    async def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a (blocking) control-plane call off the event loop, at most
        ``management`` at once."""
        async with self.management:
            return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))

    async def changed(self) -> Any:
        """After a change: this server follows the registry at once."""
        await self.deployments.sync()

    async def keys_changed(self) -> None:
        """After a key was made or revoked: this server knows at once."""
        await asyncio.to_thread(self.access.gatekeeper.keyring.refresh)
