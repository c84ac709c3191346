"""The files shipped in deploy/ for Prometheus and Grafana, and how tests read them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

__all__ = [
    "CONFIG",
    "DASHBOARD",
    "GRAFANA_VARIABLES",
    "RULES",
    "dashboard_expressions",
    "load_dashboard",
    "promtool",
    "rule_expressions",
]

DEPLOY: Final = Path(__file__).resolve().parents[3] / "deploy"
RULES: Final = DEPLOY / "prometheus" / "maas-rules.yml"
CONFIG: Final = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD: Final = DEPLOY / "grafana" / "maas-dashboard.json"
#: Grafana's variables, replaced by what they stand for to parse an expression as PromQL.
GRAFANA_VARIABLES: Final = {"$__rate_interval": "1m", "$model": ".*", "$job": ".*"}


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run Prometheus' promtool; skip without it, or fail where CI demands it."""
    found = shutil.which("promtool")
    if found is None:
        reason = "promtool is not installed (Debian: apt-get install prometheus)"
        if os.environ.get("MAAS_TEST_REQUIRE_PROMETHEUS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return subprocess.run(
        [found, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def load_dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return document


def dashboard_expressions(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard: its panels' and its variables' queries."""
    found = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable["query"]["query"] if isinstance(variable["query"], dict) else ""
        if match := re.fullmatch(r"label_values\((.+),\s*\w+\)", query):
            found.append(match[1])
    return found


def rule_expressions() -> list[str]:
    document = yaml.safe_load(RULES.read_text())
    return [rule["expr"] for group in document["groups"] for rule in group["rules"]]
