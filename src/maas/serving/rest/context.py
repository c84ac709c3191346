"""What every management route needs: the control plane, this server's deployments, and
the caller's identity for the audit log."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from starlette.requests import Request

from maas.control import ControlPlane
from maas.serving.deployments import Deployments

__all__ = ["ApiContext", "actor"]

P = ParamSpec("P")
T = TypeVar("T")


def actor(request: Request) -> str:
    """Who the audit log records: the API and the caller's address (API keys: later)."""
    client = request.client
    return f"api:{client.host}" if client is not None else "api"


@dataclass(frozen=True, slots=True)
class ApiContext:
    control: ControlPlane
    deployments: Deployments
    max_upload_bytes: int

    async def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a (blocking) control-plane call off the event loop."""
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))

    async def changed(self) -> Any:
        """After a change: this server follows the registry at once."""
        await self.deployments.sync()
