"""``AlertService`` under several processes: the holder of the lock evaluates and shares
its view; another takes over when it stops. Two services in one process stand for two
workers (``flock`` locks belong to open files, so they exclude each other here too)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client import Metric
from prometheus_client.core import CounterMetricFamily

from maas.monitoring.alert_rules import parse_rules
from maas.serving.alerts import AlertService


class Hub:
    """The metrics seam (``MetricsHub``): fixed families, sources recorded."""

    def __init__(self, failures: float) -> None:
        self.failures = failures
        self.sources: list[Callable[[], Iterable[Metric]]] = []

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily("maas_model_load_failures", "", labels=["model", "version"])
        family.add_metric(["m", "1"], self.failures)
        return [family, *(f for source in self.sources for f in source())]

    def add_source(self, source: Callable[[], Iterable[Metric]]) -> None:
        self.sources.append(source)


RULES = parse_rules({"rules": [{"name": "load", "kind": "load_failure", "webhooks": []}]})


def test_one_service_evaluates_and_another_takes_over(tmp_path: Path) -> None:
    async def scenario() -> None:
        first_hub, second_hub = Hub(0), Hub(0)
        first = AlertService(RULES, first_hub, 1.0, tmp_path)
        second = AlertService(RULES, second_hub, 1.0, tmp_path)
        try:
            assert await first.evaluate() and not await second.evaluate()
            first_hub.failures = 2
            assert await first.evaluate()
            shown = await first.report()
            assert [(a["rule"], a["state"]) for a in shown["current"]] == [("load", "firing")]
            assert await second.report() == shown  # from the holder's alerts.json
            samples = [s for f in second.families() for s in f.samples]
            assert samples == []  # only the holder reports maas_alerts_*
            held = {s.name: s.value for f in first.families() for s in f.samples if s.labels}
            assert held["maas_alerts_firing"] == 1
            await first.stop()
            assert await second.evaluate()  # took over: starts afresh
            assert (await second.report())["current"] == []
        finally:
            await first.stop()
            await second.stop()

    asyncio.run(scenario())


def test_without_a_shared_folder_the_one_process_evaluates() -> None:
    async def scenario() -> None:
        service = AlertService(RULES, Hub(0), 1.0)
        try:
            assert await service.evaluate() and await service.evaluate()
            assert next(s.value for f in service.families() for s in f.samples) == 0
        finally:
            await service.stop()

    asyncio.run(scenario())
