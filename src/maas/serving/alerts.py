"""The server's alerts: the rules of ``settings.alert_rules`` evaluated every
``settings.alert_interval_s`` over the server's own metrics (``metrics.collect()``: the
numbers a Prometheus scrape sees, merged across the processes of ``maas serve
--workers N``), their webhooks, and what ``GET /api/alerts`` shows.

With several processes only one evaluates (else every firing would be sent N times):
the one holding a non-blocking ``flock`` on ``alerts.lock`` in the folder the processes
share (``settings.metrics_dir``). The others try again each interval, so another takes
over when the holder exits (its alerts start afresh there: a firing one fires again).
The holder writes what it shows to ``alerts.json`` beside the lock, so every process
answers ``GET /api/alerts`` alike, and only the holder reports ``maas_alerts_*``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from maas.config import Settings
from maas.monitoring.alert_rules import Rule, RulesFile, load_rules, redact_url
from maas.monitoring.alerts import AlertEvaluator, alert_families, iso_utc
from maas.monitoring.metrics import Metric
from maas.monitoring.notify import WebhookNotifier

__all__ = ["AlertService", "MetricsHub"]

log = logging.getLogger(__name__)

_LOCK = "alerts.lock"
_STATE = "alerts.json"


class MetricsHub(Protocol):
    """What the alerts need of the server's metrics (``serving.metrics.ServerMetrics``)."""

    def collect(self) -> Iterable[Metric]: ...

    def add_source(self, source: Callable[[], Iterable[Metric]]) -> None: ...


class _Leadership:
    """Whether this process evaluates: always alone; else while it holds the lock."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self.folder is None or self._fd is not None

    def try_acquire(self) -> bool:
        if self.held:
            return True
        assert self.folder is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None


class AlertService:
    """Evaluates the rules in the background of the server (``start`` / ``stop``)."""

    def __init__(
        self,
        rules: RulesFile,
        metrics: MetricsHub,
        interval_s: float,
        shared_dir: Path | None = None,
        *,
        evaluator: AlertEvaluator | None = None,
        notifier: WebhookNotifier | None = None,
    ) -> None:
        self.rules = rules
        self.metrics = metrics
        self.interval_s = interval_s
        self.evaluator = evaluator or AlertEvaluator(rules.rules)
        self.notifier = notifier or WebhookNotifier(rules.delivery)
        self._leadership = _Leadership(shared_dir)
        self._state = None if shared_dir is None else shared_dir / _STATE
        self._tasks: list[asyncio.Task[None]] = []
        metrics.add_source(self.families)

    @classmethod
    def from_settings(cls, settings: Settings, metrics: MetricsHub) -> AlertService:
        """The rules of ``settings.alert_rules`` (none: no rules); ``InvalidInputError``
        naming the field when the file does not validate, so the server does not start."""
        rules = RulesFile() if settings.alert_rules is None else load_rules(settings.alert_rules)
        if rules.rules and not settings.metrics:
            log.warning("MAAS_METRICS is off: alert rules on requests, latency and loads see none")
        return cls(rules, metrics, settings.alert_interval_s, settings.metrics_dir)

    def families(self) -> list[Metric]:
        """``maas_alerts_firing`` and ``maas_alert_notifications_total``: the evaluating
        process's only (the others' would add up to more than there are)."""
        if not self.rules.rules or not self._leadership.held:
            return []
        return alert_families(self.evaluator.firing_by_rule(), self.notifier.counts)

    async def start(self) -> None:
        if not self.rules.rules:
            return
        self._tasks = [
            asyncio.create_task(self._evaluate_forever()),
            asyncio.create_task(self.notifier.run()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.notifier.aclose()
        self._leadership.release()

    async def evaluate(self) -> bool:
        """One evaluation, if this process is the one that evaluates (True then)."""
        if not self._leadership.try_acquire():
            return False
        # On the event loop: the counters' only writer is this thread (serving.metrics).
        for alert in self.evaluator.evaluate(self.metrics.collect()):
            log.info("alert %s %s (value %.6g)", alert.state, alert.fingerprint, alert.value)
            self.notifier.submit(alert, self.rules.webhooks_for(alert.rule))
        if self._state is not None:
            await asyncio.to_thread(_write_atomically, self._state, json.dumps(self._report()))
        return True

    async def _evaluate_forever(self) -> None:
        while True:
            try:
                await self.evaluate()
            except Exception:  # a bug or a full disk must not end alerting for good
                log.exception("alert evaluation failed")
            await asyncio.sleep(self.interval_s)

    async def report(self) -> dict[str, Any]:
        """What ``GET /api/alerts`` answers (the evaluating process's view)."""
        if self._leadership.held or self._state is None:
            return self._report()
        try:
            text = await asyncio.to_thread(self._state.read_text, encoding="utf-8")
            document: dict[str, Any] = json.loads(text)
            return document
        except (OSError, ValueError):  # nobody has evaluated yet
            return self._report()

    def _report(self) -> dict[str, Any]:
        evaluated = self.evaluator.evaluated_at
        return {
            "evaluated_at": None if evaluated is None else iso_utc(evaluated),
            "interval_s": self.interval_s,
            "rules": [_rule_document(self.rules, rule) for rule in self.rules.rules],
            "current": [a.to_dict() for a in self.evaluator.active()],
            "recent": [a.to_dict() for a in self.evaluator.recent()],
            "notifications": dict(self.notifier.counts),
        }


def _rule_document(rules: RulesFile, rule: Rule) -> dict[str, Any]:
    document = rule.model_dump(exclude={"webhooks", "summary"})
    document["webhooks"] = [redact_url(url) for url in rules.webhooks_for(rule.name)]
    return document


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
