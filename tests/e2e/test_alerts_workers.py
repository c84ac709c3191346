"""``maas serve --workers 2`` with alert rules: one process evaluates (the lock holder),
so a firing reaches the webhook once, not once per worker; every worker answers
``GET /api/alerts`` alike, and ``maas_alerts_firing`` adds up to the one alert."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from maas.control.uploads import register_upload
from maas.registry import Registry
from maas.store import LocalStore
from maas.testing.models import write_linear_model
from maas.testing.processes import serve_process
from tests.integration.serving.webhooks import receiving

pytestmark = pytest.mark.e2e

BODY = json.dumps(
    {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
).encode()


def _provoke(url: str, stop: threading.Event) -> None:
    """Requests over fresh connections (the kernel spreads them over the workers), most
    over the version's rate: rejected."""
    while not stop.is_set():
        with httpx.Client(base_url=url, timeout=30) as client:
            client.post("/v2/models/capped/infer", content=BODY)
        time.sleep(0.01)


def _alerts(url: str) -> dict[str, object]:
    with httpx.Client(base_url=url, timeout=30) as client:  # a new connection: any worker
        reply = client.get("/api/alerts")
    assert reply.status_code == 200, reply.text
    document: dict[str, object] = reply.json()
    return document


def _firing_total(url: str) -> float:
    with httpx.Client(base_url=url, timeout=30) as client:
        text = client.get("/metrics").text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "maas_alerts_firing" and s.labels == {"rule": "rejections"}
    )


def _until(what: str, condition: Callable[[], bool], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_one_worker_evaluates_and_notifies_once(tmp_path: Path) -> None:
    registry = Registry(f"sqlite:///{tmp_path}/maas.db", LocalStore(tmp_path / "artifacts"))
    registry.upgrade()
    limited = {"batching": {"max_requests_per_s": 1}}
    register_upload(
        registry, "capped", write_linear_model(tmp_path / "c.onnx"), actor="t", config=limited
    )
    registry.close()
    with receiving() as (receiver, url):
        rules = tmp_path / "alerts.toml"
        rules.write_text(
            f'webhooks = ["{url}"]\n[delivery]\nbackoff_s = 0.05\n'
            '[[rules]]\nname = "rejections"\nkind = "queue_rejections"\nwindow_s = 4\n'
        )
        environment = {"MAAS_ALERT_RULES": str(rules), "MAAS_ALERT_INTERVAL_S": "0.2"}
        with serve_process(tmp_path, workers=2, environment=environment) as server:
            stop = threading.Event()
            provoker = threading.Thread(target=_provoke, args=(server.url, stop), daemon=True)
            provoker.start()
            try:
                _until("the firing POST", lambda: len(receiver.accepted()) == 1)
                seen: set[object] = set()
                while len(seen) < 10:  # ten evaluations, asked of either worker
                    document = _alerts(server.url)
                    current = document["current"]
                    assert isinstance(current, list)
                    assert [(a["rule"], a["state"]) for a in current] == [("rejections", "firing")]
                    seen.add(document["evaluated_at"])
                    time.sleep(0.05)
                assert _firing_total(server.url) == 1
                assert len(receiver.all()) == 1
            finally:
                stop.set()
                provoker.join(timeout=60)
            _until("the resolved POST", lambda: len(receiver.accepted()) == 2)
    assert [body["status"] for body in receiver.accepted()] == ["firing", "resolved"]
