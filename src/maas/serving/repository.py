"""The KServe/Triton model-repository extension (index, load, unload), for REST and gRPC.

``load``/``unload`` are the control plane's (stored in the registry, audited, followed
by every server); this server then follows at once, so that tritonclient's
``load_model`` answers once the model is warm and ``unload_model`` once its versions
have drained and let go of their memory. The index lists what this server holds.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from maas.control import ControlPlane
from maas.serving.deployments import Deployments

__all__ = ["ModelRepository"]

_STATES = {"ready": "READY", "loading": "LOADING"}


class ModelRepository:
    def __init__(self, control: ControlPlane, deployments: Deployments) -> None:
        self._control = control
        self._deployments = deployments

    async def index(self, *, ready_only: bool = False) -> list[dict[str, Any]]:
        """One entry per version this server holds, loads or failed to load, and one per
        model it holds nothing of; Triton's shape: name, version, state, reason."""
        await self._deployments.sync()
        entries: list[dict[str, Any]] = []
        held: set[str] = set()
        for row in self._deployments.status():
            if row["state"] == "not_loaded":
                continue
            state = _STATES.get(row["state"], "UNAVAILABLE")
            version = "" if row["version"] is None else str(row["version"])
            reason = row.get("reason", "unloaded" if row["state"] == "unloaded" else "")
            entries.append(
                {"name": row["model"], "version": version, "state": state, "reason": reason}
            )
            held.add(row["model"])
        models = await asyncio.to_thread(self._control.models.list_models)
        for model in models:
            if model.name not in held:
                entries.append(
                    {
                        "name": model.name,
                        "version": "",
                        "state": "UNAVAILABLE",
                        "reason": "not loaded",
                    }
                )
        entries.sort(key=lambda e: (e["name"], e["version"]))
        return [e for e in entries if e["state"] == "READY"] if ready_only else entries

    async def load(self, name: str, *, actor: str) -> None:
        """Serve ``name`` (answers once its default version is warm here)."""
        call = functools.partial(self._control.deployments.load, name, actor=actor)
        await asyncio.to_thread(call)
        await self._deployments.sync()

    async def unload(self, name: str, *, actor: str) -> None:
        """Stop serving ``name`` (answers once its versions here have drained and closed)."""
        call = functools.partial(self._control.deployments.unload, name, actor=actor)
        await asyncio.to_thread(call)
        await self._deployments.sync()
        await self._deployments.settle()
