"""Alerts end to end: a real server with a rules file, real requests provoking rejections,
and webhook receivers on loopback (real HTTP servers in threads).

The alert fires and reaches the receiver once, stays firing over many evaluations
without a second POST, shows in ``GET /api/alerts`` (SDK and ``maas alerts``), and
resolves once the rejections stop; a receiver that fails twice gets it on the third try.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from maas.client import Client
from maas.config import Settings
from maas.control.uploads import register_upload
from maas.errors import InvalidInputError
from maas.registry import Registry
from maas.serving.app import build_app
from maas.testing.models import write_linear_model
from maas.testing.server import running_server
from tests.integration.serving.webhooks import Receiver, receiving

MAAS = Path(sys.executable).parent / "maas"
BODY = json.dumps(
    {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
).encode()


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver, str, str]]:
    with (
        receiving(path="/hooks/steady?token=s3cret") as (steady, steady_url),
        receiving(refuse=2, path="/hooks/flaky") as (flaky, flaky_url),
    ):
        yield steady, flaky, steady_url, flaky_url


def _rules(path: Path, steady_url: str, flaky_url: str) -> Path:
    path.write_text(
        f"""
webhooks = ["{steady_url}"]

[delivery]
timeout_s = 5
attempts = 5
backoff_s = 0.05
max_backoff_s = 0.2

[[rules]]
name = "rejections"
kind = "queue_rejections"
model = "capped"
window_s = 3
severity = "critical"

[[rules]]
name = "rejections-flaky"
kind = "queue_rejections"
model = "capped"
window_s = 3
webhooks = ["{flaky_url}"]

[[rules]]
name = "errors"
kind = "error_rate"
threshold = 0.5
"""
    )
    return path


def _until(what: str, condition: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Provoker:
    """Sends requests to the rate-limited version until stopped (most answer 429)."""

    def __init__(self, url: str) -> None:
        self.url, self.stop, self.statuses = url, threading.Event(), list[int]()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop.is_set():
                self.statuses.append(
                    client.post("/v2/models/capped/infer", content=BODY).status_code
                )
                time.sleep(0.01)

    def __enter__(self) -> Provoker:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def _samples(url: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def _maas(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAAS_")}
    env.update({"COLUMNS": "200", "NO_COLOR": "1"})
    return subprocess.run(
        [str(MAAS), "--server", url, *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_an_alert_fires_once_shows_and_resolves_and_survives_a_failing_receiver(
    tmp_path: Path,
    local_registry: Registry,
    receivers: tuple[Receiver, Receiver, str, str],
) -> None:
    steady, flaky, steady_url, flaky_url = receivers
    limited = {"batching": {"max_requests_per_s": 1}}
    register_upload(
        local_registry, "capped", write_linear_model(tmp_path / "c.onnx"), actor="t", config=limited
    )
    settings = Settings(
        home=tmp_path,
        refresh_interval_s=0.1,
        job_concurrency=0,
        alert_rules=_rules(tmp_path / "alerts.toml", steady_url, flaky_url),
        alert_interval_s=0.1,
    )
    with running_server(settings, local_registry) as url, Client(url) as sdk:
        with Provoker(url) as provoker:
            _until("the firing POST", lambda: len(steady.accepted()) == 1)
            firing = sdk.alerts()
            (shown,) = [a for a in firing.current if a.rule == "rejections"]
            assert (shown.state, shown.model, shown.version) == ("firing", "capped", "1")
            assert shown.value is not None and shown.value > 0 and shown.fired_at is not None
            assert {r.name for r in firing.rules} == {"rejections", "rejections-flaky", "errors"}
            rule = next(r for r in firing.rules if r.name == "rejections")
            assert rule.webhooks == (steady_url.split("/hooks")[0],)  # no path, no token
            listed = _maas(url, "alerts")
            assert listed.returncode == 0, listed.stderr
            assert "firing" in listed.stdout and "rejections" in listed.stdout
            document = json.loads(_maas(url, "alerts", "--json").stdout)
            assert {a["rule"] for a in document["current"]} >= {"rejections"}
            firing_now = _samples(url, "maas_alerts_firing")
            assert firing_now[(("rule", "rejections"),)] == 1
            assert firing_now[(("rule", "errors"),)] == 0
            # Many evaluations while it keeps firing: no second POST.
            seen = {firing.evaluated_at}
            while len(seen) < 10:
                report = sdk.alerts()
                assert any(a.rule == "rejections" and a.state == "firing" for a in report.current)
                seen.add(report.evaluated_at)
                time.sleep(0.05)
            assert len(steady.all()) == 1
            assert 429 in provoker.statuses
        _until("the resolved POST", lambda: len(steady.accepted()) == 2)
        _until("the flaky receiver's resolved POST", lambda: len(flaky.accepted()) == 2)
        resolved = sdk.alerts()
        assert not [a for a in resolved.current if a.rule.startswith("rejections")]
        assert {a.rule for a in resolved.recent} == {"rejections", "rejections-flaky"}
        assert all(a.state == "resolved" and a.resolved_at for a in resolved.recent)
        # Counted once the answer is read, which may be just after the receiver recorded it.
        sent = (("outcome", "sent"),)
        _until("4 sent", lambda: _samples(url, "maas_alert_notifications_total")[sent] == 4)
        assert _samples(url, "maas_alert_notifications_total")[(("outcome", "failed"),)] == 0

    fired, cleared = steady.accepted()
    assert [p["status"] for p in (fired, cleared)] == ["firing", "resolved"]
    (alert,) = fired["alerts"]
    assert alert["labels"] | {} == {
        "alertname": "rejections",
        "rule": "rejections",
        "kind": "queue_rejections",
        "severity": "critical",
        "model": "capped",
        "version": "1",
    }
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    (ended,) = cleared["alerts"]
    assert ended["startsAt"] == alert["startsAt"] and ended["endsAt"] > alert["startsAt"]
    assert ended["fingerprint"] == alert["fingerprint"]
    # The flaky receiver: refused twice, then accepted the same firing once; then resolved.
    attempts = flaky.all()
    assert [(status, body["status"]) for status, body in attempts] == [
        (500, "firing"),
        (500, "firing"),
        (200, "firing"),
        (200, "resolved"),
    ]
    assert attempts[0][1] == attempts[2][1]


def test_a_bad_rules_file_stops_the_server_with_one_line_naming_the_field(tmp_path: Path) -> None:
    rules = tmp_path / "alerts.toml"
    rules.write_text('[[rules]]\nname = "slow"\nkind = "latency_p99"\nthreshold = 0\n')
    with pytest.raises(InvalidInputError, match=r"rules\[0\]\.threshold: must be > 0"):
        build_app(Settings(home=tmp_path / "home", job_concurrency=0, alert_rules=rules))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAAS_")}
    env.update({"MAAS_HOME": str(tmp_path / "home"), "MAAS_ALERT_RULES": str(rules)})
    result = subprocess.run(
        [str(MAAS), "serve", "--port", "0", "--grpc-port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: alert rules ") and "rules[0].threshold: must be > 0" in line
