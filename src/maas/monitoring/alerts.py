"""The alert evaluator: rules over successive metric snapshots, one state machine per
(rule, model, version).

::

    evaluator = AlertEvaluator(load_rules(path).rules)
    changes = evaluator.evaluate(metrics.collect())   # every alert_interval_s
    for alert in changes: ...                          # just fired, or just resolved

Pure and clock-injected: it reads only the families it is given and the clocks it was
given (``clock`` monotonic, for windows and ``for_s``; ``wall_clock`` for the times it
reports), so tests drive it with synthetic families and a fake clock.

Each instance moves inactive -> pending (the condition holds) -> firing (it held for
``for_s``; at once when 0) -> resolved (it no longer holds, or its series went away). A
pending instance whose condition stops holding goes back to inactive without a word.
``evaluate`` returns each instance once when it fires and once when it resolves, never
again for the same firing; the last ``recent_limit`` resolved alerts are kept.

What each kind measures, per (model, version), summed over transports:

* ``latency_p99``: ``histogram_quantile(0.99)`` of the increase of
  ``maas_inference_request_duration_seconds_bucket`` over ``window_s`` (no requests: no value);
* ``error_rate``: (failure + timeout) / all of ``maas_inference_requests_total``'s increase;
* ``drift``: ``maas_drift_score`` now;
* ``load_failure``: the increase of ``maas_model_load_failures_total``;
* ``queue_rejections``: the increase of ``maas_inference_requests_total{outcome="rejected"}``.

The condition is ``value > threshold``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, Literal, TypeAlias

from prometheus_client import Metric
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from maas.monitoring.alert_rules import Rule
from maas.monitoring.history import (
    DURATION_BUCKETS,
    LOAD_FAILURES,
    REQUESTS,
    History,
    SeriesKey,
    histogram_quantile,
)

__all__ = ["Alert", "AlertEvaluator", "AlertState", "Families", "alert_families", "iso_utc"]

Families: TypeAlias = Iterable[Metric]
AlertState = Literal["pending", "firing", "resolved"]
Group: TypeAlias = tuple[str, str]  # (model, version)
_ERRORS: Final = frozenset({"failure", "timeout"})
_UNITS: Final = {
    "latency_p99": "s",
    "error_rate": "",
    "drift": "",
    "load_failure": "",
    "queue_rejections": "",
}
_WHAT: Final = {
    "latency_p99": "p99 latency",
    "error_rate": "error rate",
    "drift": "drift score",
    "load_failure": "load failures",
    "queue_rejections": "rejected requests",
}


def iso_utc(at: float) -> str:
    """Wall seconds as ISO 8601 in UTC with milliseconds (``2025-01-01T12:00:00.000Z``)."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Alert:
    """One instance of a rule, as the API and the webhooks show it. ``since``: when its
    condition started holding (wall seconds); ``fired_at`` / ``resolved_at`` likewise."""

    rule: str
    kind: str
    severity: str
    model: str
    version: str
    state: AlertState
    value: float
    threshold: float
    since: float
    fired_at: float | None = None
    resolved_at: float | None = None
    summary: str = ""

    @property
    def fingerprint(self) -> str:
        """Names the instance (rule, model, version); with ``since``, one firing of it."""
        return f"{self.rule}/{self.model}/{self.version}"

    @property
    def labels(self) -> dict[str, str]:
        return {
            "alertname": self.rule,
            "rule": self.rule,
            "kind": self.kind,
            "severity": self.severity,
            "model": self.model,
            "version": self.version,
        }

    @property
    def annotations(self) -> dict[str, str]:
        unit = _UNITS.get(self.kind, "")
        what = _WHAT.get(self.kind, self.kind)
        return {
            "summary": self.summary
            or f"{self.model} version {self.version}: {what} above {self.threshold:g}{unit}",
            "description": f"{what} {self.value:.6g}{unit} > {self.threshold:g}{unit}",
            "value": f"{self.value:.6g}",
            "threshold": f"{self.threshold:g}",
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``GET /api/alerts`` (times as ISO 8601, UTC)."""
        return {
            "rule": self.rule,
            "kind": self.kind,
            "state": self.state,
            "model": self.model,
            "version": self.version,
            "value": self.value if math.isfinite(self.value) else None,
            "threshold": self.threshold,
            "labels": self.labels,
            "annotations": self.annotations,
            "since": iso_utc(self.since),
            "fired_at": None if self.fired_at is None else iso_utc(self.fired_at),
            "resolved_at": None if self.resolved_at is None else iso_utc(self.resolved_at),
        }


@dataclass(slots=True)
class _Instance:
    alert: Alert
    pending_since: float  # monotonic


def _measure(
    rule: Rule, history: History, increases: Mapping[SeriesKey, float]
) -> dict[Group, float]:
    """The rule's value per (model, version) now; a group without one is left out."""
    wanted = rule.model
    if rule.kind == "drift":
        return {
            (model, version): value
            for (_, model, version, _), value in history.gauges.items()
            if wanted is None or model == wanted
        }
    values: dict[Group, float] = {}
    if rule.kind in ("load_failure", "queue_rejections"):
        name = LOAD_FAILURES if rule.kind == "load_failure" else REQUESTS
        for (sample, model, version, extra), increase in increases.items():
            if sample != name or (wanted is not None and model != wanted):
                continue
            if rule.kind == "queue_rejections" and extra != "rejected":
                continue
            values[(model, version)] = values.get((model, version), 0.0) + increase
        return values
    if rule.kind == "error_rate":
        totals: dict[Group, list[float]] = {}
        for (sample, model, version, outcome), increase in increases.items():
            if sample != REQUESTS or (wanted is not None and model != wanted):
                continue
            errors_all = totals.setdefault((model, version), [0.0, 0.0])
            errors_all[1] += increase
            if outcome in _ERRORS:
                errors_all[0] += increase
        return {group: e / n for group, (e, n) in totals.items() if n > 0}
    buckets: dict[Group, list[tuple[float, float]]] = {}
    for (sample, model, version, le), increase in increases.items():
        if sample != DURATION_BUCKETS or (wanted is not None and model != wanted):
            continue
        buckets.setdefault((model, version), []).append((float(le), increase))
    p99 = {group: histogram_quantile(0.99, b) for group, b in buckets.items()}
    return {group: value for group, value in p99.items() if not math.isnan(value)}


@dataclass
class AlertEvaluator:
    """Evaluates ``rules`` over each snapshot handed to ``evaluate``."""

    rules: Sequence[Rule]
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    recent_limit: int = 100
    #: Wall seconds of the last evaluation (None: none yet).
    evaluated_at: float | None = field(init=False, default=None)
    _history: History = field(init=False)
    _instances: dict[tuple[str, str, str], _Instance] = field(init=False, default_factory=dict)
    _recent: deque[Alert] = field(init=False)

    def __post_init__(self) -> None:
        self._history = History(max((r.window_s for r in self.rules), default=0.0))
        self._recent = deque(maxlen=self.recent_limit)

    def evaluate(self, families: Families) -> list[Alert]:
        """Take one snapshot; return the alerts that fired or resolved with it."""
        now, wall = self.clock(), self.wall_clock()
        self._history.add(now, families)
        self.evaluated_at = wall
        by_window: dict[float, dict[SeriesKey, float]] = {}
        changes: list[Alert] = []
        for rule in self.rules:
            if rule.window_s not in by_window:
                by_window[rule.window_s] = self._history.increases(rule.window_s)
            values = _measure(rule, self._history, by_window[rule.window_s])
            changes += self._advance(rule, values, now, wall)
        return changes

    def _advance(
        self, rule: Rule, values: Mapping[Group, float], now: float, wall: float
    ) -> list[Alert]:
        changes: list[Alert] = []
        holding = {group: v for group, v in values.items() if v > rule.limit}
        for (model, version), value in holding.items():
            key = (rule.name, model, version)
            instance = self._instances.get(key)
            if instance is None:
                alert = Alert(
                    rule.name,
                    rule.kind,
                    rule.severity,
                    model,
                    version,
                    "pending",
                    value,
                    rule.limit,
                    since=wall,
                    summary=rule.summary or "",
                )
                instance = self._instances[key] = _Instance(alert, now)
            else:
                instance.alert = replace(instance.alert, value=value)
            if instance.alert.state == "pending" and now - instance.pending_since >= rule.for_s:
                instance.alert = replace(instance.alert, state="firing", fired_at=wall)
                changes.append(instance.alert)
        for key in [k for k in self._instances if k[0] == rule.name and k[1:] not in holding]:
            instance = self._instances.pop(key)
            if instance.alert.state == "firing":
                value = values.get(key[1:], instance.alert.value)
                resolved = replace(instance.alert, state="resolved", value=value, resolved_at=wall)
                self._recent.appendleft(resolved)
                changes.append(resolved)
        return changes

    def active(self) -> list[Alert]:
        """Pending and firing alerts, firing first, then by rule, model and version."""
        alerts = [i.alert for i in self._instances.values()]
        return sorted(alerts, key=lambda a: (a.state != "firing", a.rule, a.model, a.version))

    def recent(self) -> list[Alert]:
        """Resolved alerts, newest first (at most ``recent_limit``)."""
        return list(self._recent)

    def firing_by_rule(self) -> dict[str, int]:
        """How many instances of each rule fire now (every rule named, 0 included)."""
        counts = dict.fromkeys((r.name for r in self.rules), 0)
        for instance in self._instances.values():
            if instance.alert.state == "firing":
                counts[instance.alert.rule] += 1
        return counts


def alert_families(firing: Mapping[str, int], notifications: Mapping[str, int]) -> list[Metric]:
    """``maas_alerts_firing{rule}`` and ``maas_alert_notifications_total{outcome}``."""
    gauge = GaugeMetricFamily(
        "maas_alerts_firing", "Alert instances firing now, per rule.", labels=["rule"]
    )
    for rule, count in sorted(firing.items()):
        gauge.add_metric([rule], count)
    counter = CounterMetricFamily(
        "maas_alert_notifications",
        "Webhook deliveries of alerts, by outcome (sent: a 2xx answer; failed: gave up "
        "after the retries, or dropped with the queue full).",
        labels=["outcome"],
    )
    for outcome in ("sent", "failed"):
        counter.add_metric([outcome], notifications.get(outcome, 0))
    return [gauge, counter]
