"""Which versions are loaded, and which version each name or alias routes to.

The registry is the source of truth; ``Deployments.sync`` follows it (at start, after a
change made through this server, and whenever the registry's change token moves), so
versions registered or aliases moved by any process reach the server within one
refresh interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from maas.errors import MaasError, NotFoundError, UnavailableError
from maas.registry.service import Registry
from maas.serving.deployment import Deployment, deploy

__all__ = ["Deployment", "Deployments"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Routes:
    """Per model: the default version, each alias's version, and every version number."""

    default: int
    aliases: dict[str, int] = field(default_factory=dict)
    versions: list[int] = field(default_factory=list)


class Deployments:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._loaded: dict[tuple[str, int], Deployment] = {}
        self._failed: dict[tuple[str, int], str] = {}
        self._routes: dict[str, _Routes] = {}
        self._token: tuple[int, int] | None = None
        self._lock = asyncio.Lock()
        self.synced = False

    # -- following the registry -------------------------------------------------

    async def sync(self, *, force: bool = False) -> None:
        """Re-read routes if the registry changed, and load every routed version."""
        async with self._lock:
            token = await asyncio.to_thread(self._registry.change_token)
            if token != self._token or force:
                self._routes = await asyncio.to_thread(self._read_routes)
                self._token = token
                for key in await asyncio.to_thread(self._stale_configs):
                    await self._reload(key)
            for name, routes in self._routes.items():
                for number in sorted({routes.default, *routes.aliases.values()}):
                    with contextlib.suppress(MaasError):  # recorded in _failed; retried next sync
                        await self._ensure_loaded(name, number)
            self.synced = True

    def _read_routes(self) -> dict[str, _Routes]:
        routes: dict[str, _Routes] = {}
        for model in self._registry.list_models():
            versions = [v.version for v in self._registry.list_versions(model.name)]
            if not versions:
                continue
            aliases = {a.name: a.version for a in self._registry.list_aliases(model.name)}
            default = aliases.get("production", versions[-1])
            routes[model.name] = _Routes(default, aliases, versions)
        return routes

    def _stale_configs(self) -> list[tuple[str, int]]:
        """Loaded versions whose config has a newer revision than the one they run with."""
        stale = []
        for (name, number), deployment in list(self._loaded.items()):
            revision = self._registry.get_config(name, number)
            if (revision.revision if revision else 0) != deployment.config_revision:
                stale.append((name, number))
        return stale

    async def _reload(self, key: tuple[str, int]) -> None:
        """Swap in a deployment built with the new config; the old one finishes its work."""
        old = self._loaded.pop(key)
        try:
            await self._ensure_loaded(*key)
        except MaasError:
            self._loaded[key] = old  # keep serving with the old config; logged by the loader
            return
        await old.retire()
        log.info("reloaded %s version %d with its new config", *key)

    async def run_refresh_loop(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.sync()
            except Exception:  # keep serving what is loaded; the next tick retries
                log.exception("refreshing deployments from the registry failed")

    async def _ensure_loaded(self, name: str, number: int) -> Deployment:
        key = (name, number)
        deployment = self._loaded.get(key)
        if deployment is not None:
            return deployment
        try:
            version = await asyncio.to_thread(self._registry.get_version, name, number)
            deployment = await deploy(self._registry, version)
        except MaasError as exc:
            if key not in self._failed:
                log.error("cannot load %s version %d: %s", name, number, exc.message)
            self._failed[key] = exc.message
            raise
        self._failed.pop(key, None)
        self._loaded[key] = deployment
        log.info("loaded %s version %d", name, number)
        return deployment

    # -- answering requests -------------------------------------------------------

    def _number(self, name: str, ref: str | None) -> int | None:
        routes = self._routes.get(name)
        if ref is None or ref == "":
            return routes.default if routes else None
        if ref.isdigit():
            return int(ref)
        return routes.aliases.get(ref) if routes else None

    async def get(self, name: str, ref: str | None = None) -> Deployment:
        """The deployment for ``name`` at version number, alias, or (None) its default."""
        ref = ref or None
        if name not in self._routes:  # perhaps registered since the last refresh
            await self.sync()
        number = self._number(name, ref)
        if number is not None and (deployment := self._loaded.get((name, number))):
            return deployment
        # Not routed yet (registered moments ago, or an old version): ask the registry.
        version = await asyncio.to_thread(self._registry.resolve, name, ref)
        failure = self._failed.get((name, version.version))
        if failure is not None:
            raise UnavailableError(
                f"model {name!r} version {version.version} failed to load: {failure}"
            )
        async with self._lock:
            return await self._ensure_loaded(name, version.version)

    def is_ready(self, name: str, ref: str | None = None) -> bool:
        number = self._number(name, ref)
        return number is not None and (name, number) in self._loaded

    def loaded(self, name: str | None = None) -> list[Deployment]:
        """Every loaded deployment (of one model), in name and version order."""
        return [d for key, d in sorted(self._loaded.items()) if name is None or key[0] == name]

    def versions(self, name: str) -> list[int]:
        routes = self._routes.get(name)
        if routes is None:
            raise NotFoundError(f"model {name!r} not found")
        return list(routes.versions)

    async def close(self) -> None:
        """Retire every deployment (their queues drain first)."""
        deployments, self._loaded = list(self._loaded.values()), {}
        await asyncio.gather(*(d.retire() for d in deployments))
