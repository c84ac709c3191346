"""Every metric the shipped Prometheus rules and Grafana dashboard name (deploy/) is one a
real maas server's ``/metrics`` exposes after some traffic, so none of their panels or
alerts reads a series that never exists.

Only families that need a special state to hold samples fall back to being declared
(``# TYPE``) by the server and listed in the catalogue (docs/metrics.md): ``SPECIAL``,
today the drift score, which needs a version with a training reference and a window of
live rows (its own tests cover it).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Final

import httpx
import numpy as np
import tritonclient.grpc as grpcclient
from prometheus_client.parser import text_string_to_metric_families

from maas.config import Settings
from maas.control.uploads import register_upload
from maas.registry import Registry
from maas.testing.models import write_linear_model
from maas.testing.server import serving_endpoints
from tests.unit.monitoring.shipped import dashboard_expressions, load_dashboard, rule_expressions

ROOT: Final = Path(__file__).resolve().parents[3]
SPECIAL: Final = frozenset({"maas_drift_score"})
_PROMQL_WORDS: Final = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or"}
    | {"unless", "offset", "inf", "nan"}
)
BODY: Final = json.dumps(
    {"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [1] * 8}]}
).encode()


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions,
    keywords, or inside label matchers, ranges, strings or ``by (...)`` lists."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\b\d[0-9.eE]*[a-z]*", " ", text)  # numbers and durations (5m)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        following = text[match.end() :].lstrip()
        if following.startswith("(") or match[0] in _PROMQL_WORDS:
            continue
        names.add(match[0])
    return names


def test_metric_names_are_read_out_of_promql() -> None:
    expression = (
        'histogram_quantile(0.99, sum by (model, le) (rate(a_bucket{model=~"$m",x="by (y)"}'
        "[$__rate_interval]))) / on (model) group_left b_total offset 5m > bool 0"
    )
    assert metric_names(expression) == {"a_bucket", "b_total"}


def _catalogue() -> set[str]:
    catalogue = ROOT / "docs" / "metrics.md"
    assert catalogue.exists(), "docs/metrics.md holds the metric catalogue"
    return set(re.findall(r"\bmaas_[a-z0-9_]+", catalogue.read_text()))


def test_every_expression_names_a_metric_a_real_server_exposes(
    tmp_path: Path, local_registry: Registry
) -> None:
    register_upload(local_registry, "linear", write_linear_model(tmp_path / "l.onnx"), actor="t")
    rules = tmp_path / "alerts.toml"  # so that the server reports its maas_alerts_* too
    rules.write_text('[[rules]]\nname = "load"\nkind = "load_failure"\n')
    settings = Settings(home=tmp_path, refresh_interval_s=0.1, job_concurrency=0, alert_rules=rules)
    with serving_endpoints(settings, local_registry) as endpoints:
        with httpx.Client(base_url=endpoints.http_url, timeout=30) as client:
            for _ in range(5):
                assert client.post("/v2/models/linear/infer", content=BODY).status_code == 200
            bad = client.post("/v2/models/linear/infer", content=b'{"inputs": 3}')
            assert bad.status_code == 400
        grpc = grpcclient.InferenceServerClient(endpoints.grpc_address)
        try:
            tensor = grpcclient.InferInput("input", [1, 4], "FP32")
            tensor.set_data_from_numpy(np.ones((1, 4), dtype=np.float32))
            grpc.infer("linear", [tensor])
        finally:
            grpc.close()
        text = _scrape_once_alerts_evaluated(endpoints.http_url)
    exposed: set[str] = set()
    declared: set[str] = set()
    for family in text_string_to_metric_families(text):
        declared.add(family.name)
        exposed |= {sample.name for sample in family.samples}
    named = {
        name
        for e in [*rule_expressions(), *dashboard_expressions(load_dashboard())]
        for name in metric_names(e)
    }
    assert named, "no metric names read out of the expressions"
    missing = sorted(named - exposed - SPECIAL)
    assert not missing, f"named by deploy/ but not exposed by the server: {missing}"
    catalogue = _catalogue()
    for name in sorted(named & SPECIAL - exposed):
        assert name in declared and name in catalogue, name


def _scrape_once_alerts_evaluated(url: str) -> str:
    """``/metrics`` once the alert rules were evaluated and the jobs read (their families
    are there)."""
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=url, timeout=30) as client:
        while True:
            text = client.get("/metrics").text
            if "maas_alerts_firing{" in text and "maas_jobs{" in text:
                return text
            assert time.monotonic() < deadline, "no alert or job families in /metrics"
            time.sleep(0.05)
