"""Which versions this server holds in memory, and which version each request goes to.

The registry is the source of truth; ``sync`` follows it (at start, after a change made
through this server, and whenever its change token moves) in three steps:

1. **Load what is wanted.** Every version a route wants (the default: ``production``,
   else the newest; each alias; a traffic policy's targets) is loaded and warmed. Other
   versions load on their first request.
2. **Move routes only to warm versions.** A route switches to its new version once that
   version is loaded and has answered its warm-up request. One that fails is *held*: the
   route keeps its previous version (which keeps answering), and the failure is visible
   in ``status()``, in readiness details and in the log. A failed version is tried again
   after a backoff (5 s, doubling to 5 min), or at once when asked (``prepare``).
3. **Let go of the rest.** A version no route wants any longer is drained (what it
   accepted finishes) and unloaded, its worker processes with it; under a bound
   (``residency``) unpinned versions are evicted least recently used first. An
   unloaded model (``maas models unload``) gives up all of its versions, and an
   archived version is let go even when it was loaded on request.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from dataclasses import dataclass
from typing import Any, Final

from maas.control.model_config import ModelConfig
from maas.errors import MaasError, NotFoundError, NotServableError, UnavailableError
from maas.registry.entities import ModelVersion, ServingSnapshot
from maas.registry.names import parse_version_ref
from maas.registry.service import Registry
from maas.scheduling.workers import WorkerBudget
from maas.serving.deployment import Deployment, deploy
from maas.serving.memory import release_freed_memory
from maas.serving.residency import ResidencyLimits, over_limits, victims
from maas.serving.routing import ModelRoutes, effective_routes, wanted_routes
from maas.serving.shadow import ShadowMirror
from maas.serving.statistics import (
    CANARY,
    DIRECT,
    EVICTIONS,
    LOAD_FAILURES,
    LOADS,
    PRIMARY,
    UNLOADS,
    VersionMetrics,
)

__all__ = ["Deployment", "Deployments"]

log = logging.getLogger(__name__)

Key = tuple[str, int]
RETRY_FIRST_S: Final = 5.0
RETRY_MAX_S: Final = 300.0


@dataclass(slots=True)
class _Failure:
    reason: str
    attempts: int
    retry_at_s: float
    failed_at_s: float


class Deployments:
    def __init__(
        self,
        registry: Registry,
        limits: ResidencyLimits | None = None,
        budget: WorkerBudget | None = None,
        *,
        metrics: bool = False,
    ) -> None:
        self._registry = registry
        self._metering = metrics
        #: The Prometheus series of every version loaded (or tried) since the start, kept
        #: across reloads so counters only grow (empty when ``metrics`` is false).
        self.metrics: dict[Key, VersionMetrics] = {}
        self._limits = limits or ResidencyLimits()
        self._budget = budget
        self._loaded: dict[Key, Deployment] = {}
        self._loading: dict[Key, asyncio.Task[Deployment]] = {}
        self._failed: dict[Key, _Failure] = {}
        self._snapshot: dict[str, ServingSnapshot] = {}
        self._snapshot_s = 0.0  # monotonic time just before the snapshot was read
        self._routes: dict[str, ModelRoutes] = {}
        self._holds: dict[str, dict[str, str]] = {}
        self._pinned: set[Key] = set()
        self._retiring: set[asyncio.Task[None]] = set()
        self._token: tuple[int, int] | None = None
        self._sync_lock = asyncio.Lock()
        self._warned_over_bound = False
        self.synced = False

    # -- following the registry -------------------------------------------------------

    async def sync(self, *, force: bool = False) -> None:
        """Re-read the registry if it changed, then load, route and let go (see above)."""
        async with self._sync_lock:
            asked_s = time.monotonic()
            token = await asyncio.to_thread(self._registry.change_token)
            if token != self._token or force:
                self._snapshot = await asyncio.to_thread(self._registry.deployments.snapshot)
                self._token, self._snapshot_s = token, asked_s
                await self._reload_changed_configs()
            await self._apply()
            self.synced = True

    async def run_refresh_loop(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.sync()
            except Exception:  # keep serving what is loaded; the next tick retries
                log.exception("refreshing deployments from the registry failed")

    async def _apply(self) -> None:
        for key, deployment in list(self._loaded.items()):  # workers that gave up restarting
            if (reason := deployment.pool.failed) is not None:
                self._retire(key, reason)
                self._record_failure(key, reason)
        for name in [n for n in self._routes if n not in self._snapshot]:
            del self._routes[name]
            self._holds.pop(name, None)
        for name, snapshot in self._snapshot.items():
            if snapshot.unloaded:
                self._routes[name] = ModelRoutes(
                    default=None, versions=frozenset(snapshot.versions), unloaded=True
                )
                self._holds.pop(name, None)
                continue
            wanted = wanted_routes(snapshot)
            for number in sorted(wanted.numbers()):
                with contextlib.suppress(MaasError):  # recorded in _failed, held below
                    await self._ensure((name, number))
            self._routes[name], self._holds[name] = effective_routes(
                snapshot,
                wanted,
                self._routes.get(name),
                ready=functools.partial(self._is_loaded, name),
                why=functools.partial(self._why_not_ready, name),
                mirror=functools.partial(self._mirror, name),
                filling=functools.partial(self._batch_filling, name),
            )
        self._let_go_of_archived()
        pinned = {(n, v) for n, r in self._routes.items() for v in r.pinned()}
        for key in sorted(self._pinned - pinned):
            if key in self._loaded:
                self._retire(key, "no route sends traffic to it any more")
        self._pinned = pinned
        for name, routes in self._routes.items():
            if routes.unloaded:
                for key in [k for k in self._loaded if k[0] == name]:
                    self._retire(key, "its model was unloaded")
        self._evict()

    def _let_go_of_archived(self) -> None:
        """Unload versions taken out of service since they were loaded on request, and
        forget their failures. Only what the snapshot can know of: a version loaded (or
        failed) after it was read may be newer than it."""
        in_service = {(n, v) for n, s in self._snapshot.items() for v in s.versions}
        for key, deployment in sorted(self._loaded.items()):
            if key not in in_service and deployment.loaded_at_s < self._snapshot_s:
                self._retire(key, "it is no longer in service (archived)")
        for key, failure in list(self._failed.items()):
            if key not in in_service and failure.failed_at_s < self._snapshot_s:
                del self._failed[key]

    async def _reload_changed_configs(self) -> None:
        """Swap in a deployment built with its new config; the old one drains first."""
        for key, old in list(self._loaded.items()):
            snapshot = self._snapshot.get(key[0])
            revision = 0 if snapshot is None else snapshot.config_revisions.get(key[1], 0)
            if revision == old.config_revision:
                continue
            try:
                version = await asyncio.to_thread(self._registry.get_version, *key)
                new = await deploy(
                    self._registry, version, budget=self._budget, metrics=self._metrics_for(key)
                )
            except MaasError as exc:  # keep serving with the old config
                log.error("cannot apply the new config of %s version %d: %s", *key, exc.message)
                continue
            if self._loaded.get(key) is old:
                self._loaded[key] = new
                self._count(key, LOADS)
                self._count(key, UNLOADS)
                self._retire_deployment(old)
                log.info("reloaded %s version %d with config revision %d", *key, revision)
            else:
                self._retire_deployment(new)

    # -- loading, failing, letting go ---------------------------------------------------

    async def _ensure(self, key: Key, *, force: bool = False) -> Deployment:
        """The loaded deployment of ``key``, loading (and warming) it once if needed;
        concurrent callers share one load, which a caller's cancellation does not stop."""
        deployment = self._loaded.get(key)
        if deployment is not None:
            return deployment
        task = self._loading.get(key)
        if task is None:
            failure = self._failed.get(key)
            if failure is not None and not force and time.monotonic() < failure.retry_at_s:
                raise NotServableError(
                    f"version {key[1]} of {key[0]!r} cannot serve: {failure.reason}",
                    {"model": key[0], "version": key[1], "reason": failure.reason},
                )
            task = asyncio.get_running_loop().create_task(self._load(key))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._loading[key] = task
        return await asyncio.shield(task)

    async def _load(self, key: Key) -> Deployment:
        try:
            version = await asyncio.to_thread(self._registry.get_version, *key)
            if version.archived is not None:
                raise NotFoundError(
                    f"version {key[1]} of model {key[0]!r} is archived",
                    {"model": key[0], "version": key[1]},
                )
            deployment = await deploy(
                self._registry, version, budget=self._budget, metrics=self._metrics_for(key)
            )
        except NotServableError as exc:
            self._record_failure(key, str(exc.details.get("reason", exc.message)))
            raise
        finally:
            self._loading.pop(key, None)
        self._loaded[key] = deployment
        self._failed.pop(key, None)
        self._count(key, LOADS)
        log.info("loaded %s version %d (%d bytes resident)", *key, deployment.resident_bytes)
        return deployment

    def _record_failure(self, key: Key, reason: str) -> None:
        previous = self._failed.get(key)
        attempts = 1 if previous is None else previous.attempts + 1
        delay_s = min(RETRY_FIRST_S * 2 ** (attempts - 1), RETRY_MAX_S)
        now = time.monotonic()
        self._failed[key] = _Failure(reason, attempts, now + delay_s, now)
        self._count(key, LOAD_FAILURES)
        if previous is None or previous.reason != reason:
            log.error("%s version %d cannot serve: %s", key[0], key[1], reason)

    def _is_loaded(self, name: str, number: int) -> bool:
        return (name, number) in self._loaded

    def _why_not_ready(self, name: str, number: int) -> str:
        failure = self._failed.get((name, number))
        return failure.reason if failure is not None else "it is still loading"

    def _batch_filling(self, name: str, number: int) -> bool:
        deployment = self._loaded.get((name, number))
        return deployment is not None and deployment.scheduler.batch_filling

    def _mirror(self, name: str, number: int, fraction: float) -> ShadowMirror:
        return ShadowMirror(
            name,
            number,
            lambda: self._loaded.get((name, number)),
            fraction,
            self._metrics_for((name, number)),
        )

    def _metrics_for(self, key: Key) -> VersionMetrics | None:
        """The version's series, made on first use; None when metrics are off."""
        if not self._metering:
            return None
        found = self.metrics.get(key)
        if found is None:
            found = self.metrics[key] = VersionMetrics()
        return found

    def _count(self, key: Key, event: int) -> None:
        """One lifecycle event (``statistics.LOADS`` ...) of the version, when metering."""
        found = self._metrics_for(key)
        if found is not None:
            found.events[event] += 1

    def _evict(self) -> None:
        if not self._limits.bounded:
            return
        keep = self._pinned | set(self._loading)
        for key in victims(self._loaded.values(), keep, self._limits):
            self._count(key, EVICTIONS)
            self._retire(key, "the server is over its memory bound (least recently used)")
        total = sum(d.resident_bytes for d in self._loaded.values())
        over = over_limits(total, len(self._loaded), self._limits)
        if over and not self._warned_over_bound:
            log.warning(
                "the versions routes send traffic to hold %d bytes in %d versions, over the "
                "bound; they stay loaded",
                total,
                len(self._loaded),
            )
        self._warned_over_bound = over

    def _retire(self, key: Key, why: str) -> None:
        deployment = self._loaded.pop(key, None)
        if deployment is not None:
            log.info("unloading %s version %d: %s", key[0], key[1], why)
            self._count(key, UNLOADS)
            self._retire_deployment(deployment)

    def _retire_deployment(self, deployment: Deployment) -> None:
        async def retire() -> None:
            await deployment.retire()
            await asyncio.to_thread(release_freed_memory)

        task = asyncio.get_running_loop().create_task(retire())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def settle(self) -> None:
        """Wait until every version being let go has drained and closed."""
        while self._retiring:
            await asyncio.gather(*list(self._retiring), return_exceptions=True)

    # -- answering requests -------------------------------------------------------------

    async def route(
        self, name: str, ref: str | None = None, key: bytes | None = None
    ) -> tuple[Deployment, ShadowMirror | None]:
        """The deployment a request for ``name`` at ``ref`` (a number, an alias, or None:
        the default route and its traffic policy) goes to, and the shadow it is copied to.
        ``key`` is the sticky header's value, when the policy has one."""
        routes = self._routes.get(name) or await self._unknown_model(name)
        if ref is None and not routes.unloaded:
            split = routes.split
            number = split.pick(key) if split is not None else routes.default
            deployment = self._loaded.get((name, number)) if number is not None else None
            if deployment is None:
                deployment = await self._deployment(name, number, routes)
            else:  # the hot path: nothing else to look up
                deployment.last_used_s = time.monotonic()
            metrics = deployment.stats.metrics
            if metrics is not None:
                metrics.routed[PRIMARY if split is None or number == split.primary else CANARY] += 1
            return deployment, routes.shadow
        deployment = await self.get(name, ref)
        if (metrics := deployment.stats.metrics) is not None:
            metrics.routed[DIRECT] += 1
        return deployment, None

    async def get(self, name: str, ref: str | None = None) -> Deployment:
        """The deployment of ``name`` at ``ref`` (None: its default version, with no
        traffic policy applied), loaded on demand: for metadata, config, statistics."""
        routes = self._routes.get(name) or await self._unknown_model(name)
        parsed = parse_version_ref(ref)
        if parsed is None:
            number = routes.default
        elif isinstance(parsed, int):
            number = parsed
        else:
            number = routes.aliases.get(parsed)
            if number is None:
                number = (await asyncio.to_thread(self._registry.resolve, name, parsed)).version
        return await self._deployment(name, number, routes)

    async def _deployment(self, name: str, number: int | None, routes: ModelRoutes) -> Deployment:
        if routes.unloaded:
            raise UnavailableError(
                f"model {name!r} is unloaded; load it again to serve it "
                f"(maas models load {name}, or the repository extension's load)",
                {"model": name},
            )
        deployment = self._loaded.get((name, number)) if number is not None else None
        if deployment is None:
            deployment = await self._load_on_request(name, number, routes)
        deployment.last_used_s = time.monotonic()
        return deployment

    async def _unknown_model(self, name: str) -> ModelRoutes:
        await self.sync()  # registered since the last refresh?
        routes = self._routes.get(name)
        if routes is None:
            await asyncio.to_thread(self._registry.resolve, name, None)  # NotFoundError
            raise NotFoundError(f"model {name!r} has no version in service", {"model": name})
        return routes

    async def _load_on_request(
        self, name: str, number: int | None, routes: ModelRoutes
    ) -> Deployment:
        if number is None:
            raise NotFoundError(f"model {name!r} has no version in service", {"model": name})
        if number not in routes.versions:
            await self.sync()  # registered moments ago?
            routes = self._routes.get(name, routes)
            if number not in routes.versions:
                version = await asyncio.to_thread(self._registry.get_version, name, number)
                raise NotFoundError(
                    f"version {number} of model {name!r} is archived"
                    if version.archived
                    else f"version {number} of model {name!r} is not in service",
                    {"model": name, "version": number},
                )
        try:
            deployment = await self._ensure((name, number))
        except NotServableError as exc:
            raise UnavailableError(exc.message, exc.details) from None
        self._evict()
        return deployment

    async def prepare(self, name: str, number: int) -> Deployment:
        """Load and warm ``number`` now (even within a failure's backoff), for a route
        about to move to it; ``NotServableError`` with the reason if it cannot serve."""
        deployment = await self._ensure((name, number), force=True)
        deployment.last_used_s = time.monotonic()
        return deployment

    async def try_config(self, version: ModelVersion, config: ModelConfig) -> None:
        """Load and warm ``version`` under ``config`` (a change about to be recorded) in a
        deployment of its own, then let it go: ``NotServableError`` if it cannot serve."""
        trial = await deploy(self._registry, version, config, self._budget)
        await trial.retire()

    def routing_header(self, name: str) -> str | None:
        """The header whose value keeps a caller on one version (the policy's), if any."""
        routes = self._routes.get(name)
        split = None if routes is None else routes.split
        return None if split is None else split.sticky_header

    def is_ready(self, name: str, ref: str | None = None) -> bool:
        """Whether ``name`` at ``ref`` (None: its default) is loaded and warm."""
        routes = self._routes.get(name)
        if routes is None or routes.unloaded:
            return False
        parsed = parse_version_ref(ref)
        if parsed is None:
            number = routes.default
        elif isinstance(parsed, int):
            number = parsed
        else:
            number = routes.aliases.get(parsed)
        return number is not None and (name, number) in self._loaded

    def loaded(self, name: str | None = None) -> list[Deployment]:
        """Every loaded deployment (of one model), in name and version order."""
        return [d for key, d in sorted(self._loaded.items()) if name is None or key[0] == name]

    def versions(self, name: str) -> list[int]:
        routes = self._routes.get(name)
        if routes is None:
            raise NotFoundError(f"model {name!r} not found", {"model": name})
        return sorted(routes.versions)

    # -- what operators see -------------------------------------------------------------

    def status(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every version this server holds, loads or failed to load, and unloaded models."""
        rows: list[dict[str, Any]] = []
        now = time.monotonic()
        routed: dict[Key, list[str]] = {}
        for model, routes in self._routes.items():
            for route, number in _route_names(routes):
                routed.setdefault((model, number), []).append(route)
        keys = sorted({*self._loaded, *self._loading, *self._failed} | set(routed))
        for key in keys:
            if name is not None and key[0] != name:
                continue
            row: dict[str, Any] = {
                "model": key[0],
                "version": key[1],
                "routes": routed.get(key, []),
                "pinned": key in self._pinned,
            }
            if (deployment := self._loaded.get(key)) is not None:
                row |= {
                    "state": "ready",
                    "resident_bytes": deployment.resident_bytes,
                    "idle_s": round(now - deployment.last_used_s, 3),
                    "config_revision": deployment.config_revision,
                }
            elif key in self._loading:
                row["state"] = "loading"
            elif (failure := self._failed.get(key)) is not None:
                row |= {
                    "state": "failed",
                    "reason": failure.reason,
                    "attempts": failure.attempts,
                    "retry_in_s": round(max(0.0, failure.retry_at_s - now), 1),
                }
            else:
                row["state"] = "not_loaded"
            rows.append(row)
        for model, routes in sorted(self._routes.items()):
            if routes.unloaded and (name is None or model == name):
                rows.append({"model": model, "version": None, "state": "unloaded", "routes": []})
        return rows

    def holds(self) -> list[dict[str, Any]]:
        """Routes kept on their previous version because the new one is not warm."""
        return [
            {"model": model, "route": route, "reason": reason}
            for model, held in sorted(self._holds.items())
            for route, reason in sorted(held.items())
        ]

    def failures(self) -> list[dict[str, Any]]:
        return [
            {"model": k[0], "version": k[1], "reason": f.reason}
            for k, f in sorted(self._failed.items())
        ]

    def traffic(self, name: str) -> dict[str, Any]:
        """The traffic policy this server applies to ``name`` now, and what it saw."""
        routes = self._routes.get(name)
        if routes is None:
            raise NotFoundError(f"model {name!r} not found", {"model": name})
        split = routes.split
        return {
            "model": name,
            "default": routes.default,
            "policy": routes.policy,
            "split": None
            if split is None
            else [
                {"version": n, "weight": w, "requests": split.counts[n]}
                for n, w in zip(split.numbers, split.weights, strict=True)
            ],
            "shadow": None if routes.shadow is None else routes.shadow.report.to_dict(),
            "held": self._holds.get(name, {}).get("policy"),
        }

    async def close(self) -> None:
        """Retire every deployment (their queues drain first)."""
        for task in list(self._loading.values()):
            task.cancel()
        for routes in self._routes.values():
            if routes.shadow is not None:
                await routes.shadow.close()
        for key in list(self._loaded):
            self._retire(key, "the server stops")
        await self.settle()


def _route_names(routes: ModelRoutes) -> list[tuple[str, int]]:
    found = [] if routes.default is None else [("default", routes.default)]
    found += sorted(routes.aliases.items())
    if routes.split is not None:
        found += [("split", n) for n in routes.split.numbers]
    if routes.shadow is not None:
        found.append(("shadow", routes.shadow.number))
    return found
