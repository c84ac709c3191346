"""Whether a model is served at all: load and unload, as the model-repository extension
(tritonclient's ``load_model`` / ``unload_model``) and ``maas models load|unload`` ask.

The wish is stored in the registry (audited), so every server sharing it follows: an
unloaded model stops being served, its versions drained and their memory freed, until
it is loaded again. ``load`` answers once the model's default version is warm.
"""

from __future__ import annotations

from maas.control.warmup import Warmup
from maas.registry.entities import DeploymentState
from maas.registry.service import Registry

__all__ = ["DeploymentControl"]


class DeploymentControl:
    """>>> control.deployments.unload("digits", actor="api")  # doctest: +SKIP"""

    def __init__(self, registry: Registry, warmup: Warmup) -> None:
        self._registry = registry
        self._warmup = warmup

    def state(self, name: str) -> DeploymentState:
        return self._registry.deployments.get_state(name)

    def load(self, name: str, *, actor: str) -> DeploymentState:
        """Serve the model again (a no-op when it is served) once its default version is
        warm; ``NotServableError`` when that version cannot serve."""
        default = self._registry.resolve(name)
        self._warmup.prepare(default)
        if self._registry.deployments.get_state(name).state == "loaded":
            return self._registry.deployments.get_state(name)
        return self._registry.deployments.set_state(name, "loaded", actor=actor)

    def unload(self, name: str, *, actor: str) -> DeploymentState:
        """Stop serving the model until it is loaded again."""
        if self._registry.deployments.get_state(name).state == "unloaded":
            return self._registry.deployments.get_state(name)
        return self._registry.deployments.set_state(name, "unloaded", actor=actor)
