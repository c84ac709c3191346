"""The files shipped for users who run Prometheus and Grafana (deploy/): promtool accepts
the rules and the example config, each rule fires on the series it is about (``promtool
test rules``), and the Grafana dashboard is a valid Grafana 10 document whose every
expression parses as PromQL.

promtool comes with Debian's ``prometheus`` package; without it these tests skip, unless
``MAAS_TEST_REQUIRE_PROMETHEUS=1`` (CI) turns the skip into a failure. Which metrics the
expressions name is checked against a real server in
``tests/integration/serving/test_shipped_dashboard_metrics.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from maas.monitoring.alert_rules import KINDS
from tests.unit.monitoring.shipped import (
    CONFIG,
    GRAFANA_VARIABLES,
    RULES,
    dashboard_expressions,
    load_dashboard,
    promtool,
)


def test_promtool_accepts_the_rules_and_the_example_config() -> None:
    rules = promtool("check", "rules", str(RULES))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 5 rules found" in rules.stdout
    config = promtool("check", "config", CONFIG.name, cwd=CONFIG.parent)
    assert config.returncode == 0, config.stdout + config.stderr
    assert "1 rule files found" in config.stdout


def test_the_rules_are_maas_own_kinds() -> None:
    document = yaml.safe_load(RULES.read_text())
    kinds = [rule["labels"]["kind"] for group in document["groups"] for rule in group["rules"]]
    assert sorted(kinds) == sorted(KINDS)


def _series(name: str, labels: dict[str, str], values: str) -> dict[str, str]:
    text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return {"series": f"{name}{{{text}}}", "values": values}


def _fires(alert: str, at: str, labels: dict[str, str], **annotations: str) -> dict[str, Any]:
    return {
        "eval_time": at,
        "alertname": alert,
        "exp_alerts": [{"exp_labels": labels, "exp_annotations": annotations}],
    }


def _quiet(alert: str, at: str) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": []}


def test_each_rule_fires_on_what_it_watches_and_only_then(tmp_path: Path) -> None:
    rest = {"transport": "rest"}
    requests = "maas_inference_requests_total"
    series = [
        # m/1 fails 6 requests of 10 a minute; ok/1 succeeds.
        _series(requests, {"model": "m", "version": "1", **rest, "outcome": "failure"}, "0+6x30"),
        _series(requests, {"model": "m", "version": "1", **rest, "outcome": "success"}, "0+4x30"),
        _series(requests, {"model": "ok", "version": "1", **rest, "outcome": "success"}, "0+9x30"),
        # ok/1 rejects 20 a minute, from minute 10 on.
        _series(
            requests,
            {"model": "ok", "version": "1", **rest, "outcome": "rejected"},
            "0x10 0+20x20",
        ),
        # slow/1: 100 requests a minute, 90 within 0.5 s, all within 1 s: p99 0.95 s.
        *(
            _series(
                "maas_inference_request_duration_seconds_bucket",
                {"model": "slow", "version": "1", **rest, "le": le},
                f"0+{per_minute}x30",
            )
            for le, per_minute in (("0.25", 50), ("0.5", 90), ("1.0", 100), ("+Inf", 100))
        ),
        *(
            _series(
                "maas_inference_request_duration_seconds_bucket",
                {"model": "ok", "version": "1", **rest, "le": le},
                f"0+{per_minute}x30",
            )
            for le, per_minute in (("0.25", 99), ("0.5", 100), ("1.0", 100), ("+Inf", 100))
        ),
        _series("maas_drift_score", {"model": "m", "version": "2"}, "0.5x30"),
        _series("maas_drift_score", {"model": "ok", "version": "1"}, "0.05x30"),
        # m/3 fails to load once, at minute 3.
        _series("maas_model_load_failures_total", {"model": "m", "version": "3"}, "0 0 0 1x27"),
        _series("maas_model_load_failures_total", {"model": "ok", "version": "1"}, "0x30"),
    ]
    m1 = {"model": "m", "version": "1"}
    tests = [
        _quiet("MaasHighErrorRate", "3m"),  # pending for 5m first
        _fires(
            "MaasHighErrorRate",
            "10m",
            {**m1, "severity": "critical", "kind": "error_rate"},
            summary="m version 1: error rate above 5%",
            description="(failure + timeout) / all requests over 5m is 60%.",
        ),
        _quiet("MaasHighLatencyP99", "3m"),
        _fires(
            "MaasHighLatencyP99",
            "10m",
            {"model": "slow", "version": "1", "severity": "warning", "kind": "latency_p99"},
            summary="slow version 1: p99 latency above 0.5s",
            description="p99 latency over 5m is 950ms.",
        ),
        _quiet("MaasInputDrift", "10m"),
        _fires(
            "MaasInputDrift",
            "20m",
            {"model": "m", "version": "2", "severity": "warning", "kind": "drift"},
            summary="m version 2: inputs drift from the training data",
            description="The drift score (largest per-feature PSI) is 0.50.",
        ),
        _quiet("MaasModelLoadFailed", "2m"),
        _fires(
            "MaasModelLoadFailed",
            "5m",
            {"model": "m", "version": "3", "severity": "critical", "kind": "load_failure"},
            summary="m version 3 failed to load",
            description="Failed loads in the last 10m; GET /api/deployments says why.",
        ),
        _quiet("MaasModelLoadFailed", "25m"),  # out of the window
        _quiet("MaasQueueRejections", "9m"),
        _fires(
            "MaasQueueRejections",
            "20m",
            {"model": "ok", "version": "1", "severity": "warning", "kind": "queue_rejections"},
            summary="ok version 1 rejects requests",
            description="100 requests rejected in 5m (queue full or rate limited).",
        ),
    ]
    document = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": tests}],
    }
    path = tmp_path / "maas-rules.test.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    result = promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_is_a_grafana_document_over_one_prometheus_input() -> None:
    dashboard = load_dashboard()
    assert dashboard["schemaVersion"] >= 36 and dashboard["uid"] and dashboard["title"]
    (source,) = dashboard["__inputs"]
    assert (source["name"], source["type"], source["pluginId"]) == (
        "DS_PROMETHEUS",
        "datasource",
        "prometheus",
    )
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    model = variables["model"]
    assert model["type"] == "query" and model["multi"] and model["includeAll"]
    assert model["query"]["query"] == "label_values(maas_inference_requests_total, model)"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    wanted = {"${DS_PROMETHEUS}"}
    titles = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        titles.add(panel["title"])
        if panel["type"] == "row":
            continue
        assert panel["type"] in ("timeseries", "stat"), panel["title"]
        assert panel["datasource"]["uid"] in wanted and panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in wanted and target["expr"].strip()
    # What the issue asks the dashboard to show.
    for title in (
        "Requests by outcome",
        "Request latency p50 / p95 / p99",
        "Error rate by version",
        "Batch size",
        "Queue depth and in flight",
        "Drift score",
        "Loads, failures, unloads",
        "Jobs by state",
    ):
        assert title in titles
    expressions = " ".join(dashboard_expressions(dashboard))
    for q in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({q}, sum by (model, version, le)" in expressions


def test_every_dashboard_expression_parses_as_promql(tmp_path: Path) -> None:
    """promtool parses them: each becomes a recording rule, Grafana's variables replaced."""
    rules = []
    for i, expr in enumerate(dashboard_expressions(load_dashboard())):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:expression_{i}", "expr": expr})
    path = tmp_path / "dashboard-expressions.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
