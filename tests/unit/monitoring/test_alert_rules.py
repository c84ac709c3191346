"""Alert rules: the file's validation names the field; the evaluator's state machine over
synthetic metric families and a fake clock; p99 as Prometheus' histogram_quantile."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import Metric
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from maas.errors import InvalidInputError
from maas.monitoring.alert_rules import load_rules, parse_rules
from maas.monitoring.alerts import AlertEvaluator, alert_families
from maas.monitoring.history import History, histogram_quantile

ROOT = Path(__file__).resolve().parents[3]
EPOCH = 1_700_000_000.0


# -- the rules file ----------------------------------------------------------------------


def _refusal(document: dict[str, Any]) -> str:
    with pytest.raises(InvalidInputError) as caught:
        parse_rules(document, "rules.toml")
    return caught.value.message


def _rule(**fields: Any) -> dict[str, Any]:
    return {"name": "r", "kind": "latency_p99", "threshold": 0.5} | fields


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (
            [_rule(), _rule(name="b"), _rule(name="c", threshold=0)],
            "rules[2].threshold: must be > 0",
        ),
        ([_rule(kind="error_rate", threshold=1.5)], "rules[0].threshold: must be > 0 and < 1"),
        ([_rule(kind="drift", threshold=None)], "rules[0].threshold: required for kind drift"),
        ([_rule(kind="queue_rejections", threshold=-1)], "rules[0].threshold: must be >= 0"),
        ([_rule(kind="p95")], "rules[0].kind: must be one of 'latency_p99', 'error_rate'"),
        ([_rule(window_s=0)], "rules[0].window_s: must be > 0"),
        ([_rule(for_s=-1)], "rules[0].for_s: must be >= 0"),
        ([_rule(window_s="5m")], "rules[0].window_s: must be a number, got str"),
        ([_rule(threshold=True)], "rules[0].threshold: must be a number, got bool"),
        ([_rule(treshold=1)], "rules[0].treshold: unknown field"),
        ([{"kind": "drift", "threshold": 1}], "rules[0].name: required"),
        ([_rule(name="1st")], "rules[0].name: must start with a letter"),
        ([_rule(severity="page")], "rules[0].severity: must be one of 'info', 'warning'"),
        ([_rule(webhooks=["ftp://x/y"])], "rules[0].webhooks[0]: must be an http:// or https://"),
        ([_rule(), _rule()], "rules[1].name: 'r' is already the name of rules[0]"),
    ],
)
def test_each_invalid_rule_is_refused_naming_its_field(
    rules: list[dict[str, Any]], expected: str
) -> None:
    document = {"rules": [{k: v for k, v in r.items() if v is not None} for r in rules]}
    message = _refusal(document)
    assert message.startswith("rules.toml: ") and expected in message, message


def test_top_level_fields_are_named_too() -> None:
    assert "webhooks[1]: must be an http:// or https:// URL" in _refusal(
        {"webhooks": ["https://ok.example", "not a url"]}
    )
    assert "delivery.attempts: must be >= 1" in _refusal({"delivery": {"attempts": 0}})
    assert "alerts: unknown field" in _refusal({"alerts": []})
    both = _refusal({"rules": [_rule(threshold=0), _rule(name="b", window_s=-1)]})
    assert "rules[0].threshold: must be > 0; rules[1].window_s: must be > 0" in both


def test_the_file_is_read_as_toml(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text('[[rules]]\nname = "x"\nkind = "load_failure"\n')
    (rule,) = load_rules(path).rules
    assert rule.kind == "load_failure" and rule.limit == 0.0 and rule.window_s == 300
    path.write_text("[[rules]\n")
    with pytest.raises(InvalidInputError, match=r"alerts.toml: not valid TOML"):
        load_rules(path)
    with pytest.raises(InvalidInputError, match="no such file"):
        load_rules(tmp_path / "missing.toml")


def test_the_shipped_example_validates_and_uses_every_kind() -> None:
    rules = load_rules(ROOT / "deploy" / "maas-alerts.example.toml")
    assert {r.kind for r in rules.rules} == {
        "latency_p99",
        "error_rate",
        "drift",
        "load_failure",
        "queue_rejections",
    }
    assert rules.webhooks_for("digits-slow") == ["https://hooks.example.com/maas/digits"]
    assert rules.webhooks_for("errors") == rules.webhooks


# -- synthetic metrics and a clock -------------------------------------------------------


@dataclass
class Clock:
    now: float = 0.0

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return EPOCH + self.now


@dataclass
class Traffic:
    """Cumulative counters as a server would expose them, per (model, version)."""

    requests: dict[tuple[str, str, str], float]  # (model, version, outcome) -> count
    buckets: dict[tuple[str, str], list[float]]  # cumulative counts per BOUNDS
    load_failures: dict[tuple[str, str], float]
    drift: dict[tuple[str, str], float]

    def families(self) -> list[Metric]:
        requests = CounterMetricFamily(
            "maas_inference_requests", "", labels=["model", "version", "transport", "outcome"]
        )
        for (model, version, outcome), count in self.requests.items():
            # Split over two transports: the rules sum them.
            requests.add_metric([model, version, "rest", outcome], count - count // 2)
            requests.add_metric([model, version, "grpc", outcome], count // 2)
        latency = HistogramMetricFamily(
            "maas_inference_request_duration_seconds", "", labels=["model", "version", "transport"]
        )
        for (model, version), counts in self.buckets.items():
            pairs = [(b, c) for b, c in zip(BOUNDS, counts, strict=True)]
            latency.add_metric([model, version, "rest"], pairs, sum_value=0.0)
        failures = CounterMetricFamily("maas_model_load_failures", "", labels=["model", "version"])
        for (model, version), count in self.load_failures.items():
            failures.add_metric([model, version], count)
        drift = GaugeMetricFamily("maas_drift_score", "", labels=["model", "version"])
        for (model, version), score in self.drift.items():
            drift.add_metric([model, version], score)
        noise = GaugeMetricFamily("maas_inference_queue_depth", "", labels=["model", "version"])
        noise.add_metric(["m", "1"], 3)
        return [requests, latency, failures, drift, noise]


BOUNDS = ("0.1", "0.25", "0.5", "1.0", "+Inf")


def _traffic() -> Traffic:
    return Traffic({}, {}, {}, {})


def _evaluator(*rules: dict[str, Any]) -> tuple[AlertEvaluator, Clock]:
    clock = Clock()
    parsed = parse_rules({"rules": list(rules)}).rules
    return AlertEvaluator(parsed, clock=clock.monotonic, wall_clock=clock.wall), clock


def _step(
    evaluator: AlertEvaluator, clock: Clock, at: float, families: Iterable[Metric]
) -> list[tuple[str, str, str, str]]:
    clock.now = at
    return [(a.state, a.rule, a.model, a.version) for a in evaluator.evaluate(families)]


def _states(evaluator: AlertEvaluator) -> list[tuple[str, str, str]]:
    return [(a.state, a.model, a.version) for a in evaluator.active()]


# -- the state machine -------------------------------------------------------------------


def test_an_alert_goes_pending_then_fires_after_for_s_once_then_resolves() -> None:
    evaluator, clock = _evaluator(
        {"name": "errors", "kind": "error_rate", "threshold": 0.1, "window_s": 10, "for_s": 10}
    )
    t = _traffic()
    t.requests[("m", "1", "success")] = 100
    assert _step(evaluator, clock, 0, t.families()) == []
    t.requests[("m", "1", "success")] += 10
    t.requests[("m", "1", "failure")] = 6
    t.requests[("m", "1", "timeout")] = 4  # 10 errors of 20: 0.5
    assert _step(evaluator, clock, 5, t.families()) == []
    assert _states(evaluator) == [("pending", "m", "1")]
    (pending,) = evaluator.active()
    assert pending.value == pytest.approx(0.5) and pending.since == EPOCH + 5
    t.requests[("m", "1", "failure")] += 5
    assert _step(evaluator, clock, 10, t.families()) == []  # held 5 s of 10
    t.requests[("m", "1", "failure")] += 5
    assert _step(evaluator, clock, 15, t.families()) == [("firing", "errors", "m", "1")]
    (firing,) = evaluator.active()
    assert firing.fired_at == EPOCH + 15 and firing.since == EPOCH + 5
    assert evaluator.firing_by_rule() == {"errors": 1}
    t.requests[("m", "1", "failure")] += 5
    assert _step(evaluator, clock, 20, t.families()) == []  # still firing: not again
    t.requests[("m", "1", "success")] += 1000  # 5 errors of 1005 in the last 10 s
    assert _step(evaluator, clock, 25, t.families()) == [("resolved", "errors", "m", "1")]
    assert evaluator.active() == [] and evaluator.firing_by_rule() == {"errors": 0}
    (resolved,) = evaluator.recent()
    assert resolved.resolved_at == EPOCH + 25 and resolved.value == pytest.approx(5 / 1005)
    assert _step(evaluator, clock, 30, t.families()) == []  # no requests: no value, quiet


def test_a_pending_alert_that_clears_goes_quietly() -> None:
    evaluator, clock = _evaluator(
        {"name": "load", "kind": "load_failure", "window_s": 10, "for_s": 30}
    )
    t = _traffic()
    _step(evaluator, clock, 0, t.families())
    t.load_failures[("m", "2")] = 1  # a new series: its first failure counts
    assert _step(evaluator, clock, 5, t.families()) == []
    assert _states(evaluator) == [("pending", "m", "2")]
    assert _step(evaluator, clock, 20, t.families()) == []  # out of the window
    assert evaluator.active() == [] and evaluator.recent() == []


def test_instances_are_per_model_and_version_and_a_rule_can_name_one_model() -> None:
    evaluator, clock = _evaluator(
        {"name": "any", "kind": "queue_rejections", "threshold": 2, "window_s": 60},
        {"name": "only-b", "kind": "queue_rejections", "window_s": 60, "model": "b"},
    )
    t = _traffic()
    t.requests.update({("a", "1", "rejected"): 0, ("a", "2", "rejected"): 0})
    _step(evaluator, clock, 0, t.families())
    t.requests.update(
        {("a", "1", "rejected"): 3, ("a", "2", "rejected"): 2, ("b", "1", "rejected"): 1}
    )
    changes = _step(evaluator, clock, 5, t.families())
    # 3 > 2 fires for a/1, 2 does not for a/2; b/1's single rejection fires only-b.
    assert sorted(changes) == [("firing", "any", "a", "1"), ("firing", "only-b", "b", "1")]


def test_a_counter_that_goes_down_counts_on_from_there() -> None:
    """A merged sum drops when a worker exits; what the others hold was counted already."""
    evaluator, clock = _evaluator(
        {"name": "load", "kind": "load_failure", "threshold": 4, "window_s": 100}
    )
    t = _traffic()
    t.load_failures[("m", "1")] = 100
    _step(evaluator, clock, 0, t.families())
    t.load_failures[("m", "1")] = 60  # a worker holding 40 exited
    assert _step(evaluator, clock, 5, t.families()) == []
    assert evaluator.active() == []  # not 60 new failures, nor -40
    t.load_failures[("m", "1")] = 63
    assert _step(evaluator, clock, 10, t.families()) == []  # 3 is not > 4
    t.load_failures[("m", "1")] = 65
    assert _step(evaluator, clock, 15, t.families()) == [("firing", "load", "m", "1")]
    assert evaluator.active()[0].value == 5


def test_drift_compares_the_score_now() -> None:
    evaluator, clock = _evaluator({"name": "drift", "kind": "drift", "threshold": 0.25})
    t = _traffic()
    t.drift[("m", "1")] = 0.1
    assert _step(evaluator, clock, 0, t.families()) == []
    t.drift[("m", "1")] = 0.4
    assert _step(evaluator, clock, 5, t.families()) == [("firing", "drift", "m", "1")]
    del t.drift[("m", "1")]  # the version went away: its alert resolves
    assert _step(evaluator, clock, 10, t.families()) == [("resolved", "drift", "m", "1")]


def test_history_keeps_only_what_the_longest_window_needs() -> None:
    history = History(span_s=30)
    t = _traffic()
    for second in range(0, 1000, 5):
        t.requests[("m", "1", "success")] = second
        history.add(float(second), t.families())
    assert len(history) <= 30 / 5 + 2
    increases = history.increases(30)
    assert increases[("maas_inference_requests_total", "m", "1", "success")] == 30


# -- p99 ---------------------------------------------------------------------------------


def test_p99_interpolates_inside_the_bucket_like_histogram_quantile() -> None:
    # 100 observations: 10 <= 0.1 s, 60 <= 0.25, 95 <= 0.5, 100 <= 1. Rank 99 falls in
    # (0.5, 1] holding 5, 4 of them into it: 0.5 + (1 - 0.5) * 4 / 5 = 0.9.
    cumulative = [(0.1, 10.0), (0.25, 60.0), (0.5, 95.0), (1.0, 100.0), (math.inf, 100.0)]
    assert histogram_quantile(0.99, cumulative) == pytest.approx(0.9)
    # The median: rank 50 in (0.1, 0.25] holding 50, 40 into it.
    assert histogram_quantile(0.5, cumulative) == pytest.approx(0.1 + 0.15 * 40 / 50)
    # The first bucket starts at 0.
    assert histogram_quantile(0.05, cumulative) == pytest.approx(0.05)
    # The rank in +Inf: the highest finite bound; no observations, or no +Inf: NaN.
    assert histogram_quantile(0.99, [(0.1, 10.0), (math.inf, 20.0)]) == 0.1
    assert math.isnan(histogram_quantile(0.99, [(0.1, 0.0), (math.inf, 0.0)]))
    assert math.isnan(histogram_quantile(0.99, [(0.1, 1.0), (0.2, 2.0)]))


def test_the_latency_rule_reads_p99_of_the_window_only() -> None:
    evaluator, clock = _evaluator(
        {"name": "slow", "kind": "latency_p99", "threshold": 0.8, "window_s": 10}
    )
    t = _traffic()
    t.buckets[("m", "1")] = [1000.0, 1000.0, 1000.0, 1000.0, 1000.0]  # all fast, long ago
    _step(evaluator, clock, 0, t.families())
    t.buckets[("m", "1")] = [
        c + d for c, d in zip(t.buckets[("m", "1")], (10, 60, 95, 100, 100), strict=True)
    ]
    assert _step(evaluator, clock, 5, t.families()) == [("firing", "slow", "m", "1")]
    assert evaluator.active()[0].value == pytest.approx(0.9)
    assert evaluator.active()[0].annotations["value"] == "0.9"


def test_alert_families_report_every_rule_and_both_outcomes() -> None:
    families = alert_families({"b": 0, "a": 2}, {"sent": 3})
    samples = [(s.name, s.labels, s.value) for f in families for s in f.samples]
    assert samples == [
        ("maas_alerts_firing", {"rule": "a"}, 2),
        ("maas_alerts_firing", {"rule": "b"}, 0),
        ("maas_alert_notifications_total", {"outcome": "sent"}, 3),
        ("maas_alert_notifications_total", {"outcome": "failed"}, 0),
    ]
