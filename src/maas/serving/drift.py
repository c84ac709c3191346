"""``DriftMonitor``: every served version with an input reference gets a live window of
its inputs, scored against the reference off the event loop (``maas.monitoring.drift``).

The hot path pays one dict lookup and ``LiveWindow.offer`` per successful request
(``DataPlane.infer``). Every ``interval_s`` the monitor follows the registry (windows for
loaded versions whose reference appeared or changed, none for versions let go of), takes
each window's intake on the event loop and extracts and scores it in a thread. The
latest reports feed ``GET /api/models/{name}/drift`` and the ``maas_drift_*`` families.

With ``maas serve --workers N`` every worker keeps its own windows (each sees the
requests it served); ``/metrics`` merges their drift families by the largest value, and
the API answers from whichever worker the request reached.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from maas.errors import MaasError
from maas.monitoring.drift import MIN_ROWS, DriftReport, LiveWindow, Reference, score
from maas.monitoring.metrics import Metric, gauge_family
from maas.registry.service import Registry
from maas.serving.deployment import Deployment
from maas.serving.deployments import Deployments

__all__ = ["DriftMonitor", "VersionDrift"]

log = logging.getLogger(__name__)

Key = tuple[str, int]


@dataclass(slots=True)
class _Tracked:
    window: LiveWindow
    revision: int
    report: DriftReport | None = None
    computed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class VersionDrift:
    """What the API shows of one served version: its window (``rows``: those the report
    was computed over), its reference, its report (None until the first computation, or
    when the version has no reference)."""

    model: str
    version: int
    window_rows: int
    rows: int
    sampled_every: int
    reference: dict[str, Any] | None
    report: DriftReport | None
    computed_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        report = self.report
        return {
            "model": self.model,
            "version": self.version,
            "window_rows": self.window_rows,
            "rows": self.rows,
            "sampled_every": self.sampled_every,
            "reference": self.reference,
            "score": None if report is None else report.score,
            "threshold": None if report is None else report.threshold,
            "drifted": None if report is None else report.drifted,
            "min_rows": None if report is None else report.min_rows,
            "computed_at": None if self.computed_at is None else self.computed_at.isoformat(),
            "features": [] if report is None else report.to_dict()["features"],
        }


class DriftMonitor:
    """>>> drift = DriftMonitor(registry, deployments, window_rows=2000)  # doctest: +SKIP
    >>> asyncio.create_task(drift.run(10.0))  # doctest: +SKIP
    """

    def __init__(self, registry: Registry, deployments: Deployments, *, window_rows: int) -> None:
        self._registry = registry
        self._deployments = deployments
        self._window_rows = window_rows
        self._tracked: dict[Key, _Tracked] = {}
        #: The hot path's map: a loaded deployment (by identity) -> its version's window.
        self._windows: dict[Deployment, LiveWindow] = {}
        self._lock = asyncio.Lock()

    def offer(self, deployment: Deployment, feed: Mapping[str, np.ndarray]) -> None:
        """On the hot path, after a successful request: O(1), see ``LiveWindow.offer``."""
        window = self._windows.get(deployment)
        if window is not None:
            window.offer(feed)

    async def run(self, interval_s: float) -> None:
        """Follow the registry and score every window, every ``interval_s``."""
        while True:
            try:
                await self.sync()
                await self.compute()
            except Exception:  # the registry is away, say: keep the windows, try again
                log.exception("computing input drift failed")
            await asyncio.sleep(interval_s)

    async def sync(self) -> None:
        """Windows for the loaded versions that have a reference: a new one when the
        reference appeared or was replaced (revision), none for versions let go of."""
        async with self._lock:
            revisions = await asyncio.to_thread(self._registry.references.revisions)
            loaded = {d.key: d for d in self._deployments.loaded()}
            for key in [k for k in self._tracked if k not in loaded or k not in revisions]:
                del self._tracked[key]
            for key in loaded:
                revision = revisions.get(key)
                tracked = self._tracked.get(key)
                if revision is None or (tracked is not None and tracked.revision == revision):
                    continue
                reference = await asyncio.to_thread(self._read, key)
                if reference is not None:
                    window = LiveWindow(reference, self._window_rows)
                    self._tracked[key] = _Tracked(window, revision)
            self._windows = {
                d: self._tracked[k].window for k, d in loaded.items() if k in self._tracked
            }

    def _read(self, key: Key) -> Reference | None:
        found = self._registry.references.get(*key)
        if found is None:
            return None
        try:
            return Reference.from_dict(found.document)
        except MaasError as exc:  # stored by an older maas, say: drift is off for it
            log.warning("the input reference of %s version %d is not usable: %s", *key, exc)
            return None

    async def compute(self) -> None:
        """Score every window: its intake is taken here, on the event loop (a swap), and
        extracted and scored in one thread."""
        async with self._lock:
            work = [(tracked, tracked.window.take()) for tracked in self._tracked.values()]
            if not work:
                return
            reports = await asyncio.to_thread(_score_all, work)
            now = datetime.now(UTC)
            for (tracked, _), report in zip(work, reports, strict=True):
                tracked.report, tracked.computed_at = report, now

    def status(self, name: str) -> list[VersionDrift]:
        """Every loaded version of ``name``, oldest first; ``NotFoundError`` for a model
        the registry does not know."""
        self._deployments.versions(name)  # NotFoundError for an unknown model
        found = []
        for deployment in sorted(self._deployments.loaded(name), key=lambda d: d.number):
            tracked = self._tracked.get(deployment.key)
            if tracked is None:
                found.append(
                    VersionDrift(name, deployment.number, self._window_rows, 0, 1, None, None, None)
                )
                continue
            window = tracked.window
            found.append(
                VersionDrift(
                    model=name,
                    version=deployment.number,
                    window_rows=window.rows,
                    rows=window.held if tracked.report is None else tracked.report.rows,
                    sampled_every=window.stride,
                    reference=window.reference.summary() | {"revision": tracked.revision},
                    report=tracked.report,
                    computed_at=tracked.computed_at,
                )
            )
        return found

    def families(self) -> Iterable[Metric]:
        """``maas_drift_score``, ``_psi``, ``_ks`` and ``_window_rows`` of this process's
        windows (a version has a score once its window holds ``MIN_ROWS`` rows)."""
        labels = ["model", "version"]
        drift_score = gauge_family(
            "maas_drift_score",
            "Input drift of the version against its reference: the largest per-feature PSI "
            "over the live window (above 0.2: a significant shift).",
            labels,
        )
        psi = gauge_family(
            "maas_drift_psi",
            "Population stability index of one input feature against the reference.",
            [*labels, "feature"],
        )
        ks = gauge_family(
            "maas_drift_ks",
            "Kolmogorov-Smirnov statistic of one input feature against the reference.",
            [*labels, "feature"],
        )
        rows = gauge_family(
            "maas_drift_window_rows", "Live input rows in the version's drift window.", labels
        )
        for (name, number), tracked in sorted(self._tracked.items()):
            values = [name, str(number)]
            rows.add_metric(values, tracked.window.held)
            report = tracked.report
            if report is None:
                continue
            if report.score is not None:
                drift_score.add_metric(values, report.score)
            for feature in report.features:
                psi.add_metric([*values, feature.name], feature.psi)
                ks.add_metric([*values, feature.name], feature.ks)
        return [drift_score, psi, ks, rows]


def _score_all(work: list[tuple[_Tracked, list[Mapping[str, np.ndarray]]]]) -> list[DriftReport]:
    reports = []
    for tracked, feeds in work:
        window = tracked.window
        window.absorb(feeds)
        reports.append(
            score(window.reference, window.values(), min_rows=min(MIN_ROWS, window.rows))
        )
    return reports
