"""``maas serve --workers 2``: whichever worker answers a scrape, the counts add up over
both processes."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client import Metric
from prometheus_client.parser import text_string_to_metric_families

from maas.control.uploads import register_upload
from maas.monitoring.snapshots import from_json
from maas.registry import Registry
from maas.store import LocalStore
from maas.testing.models import write_linear_model
from maas.testing.processes import serve_process

pytestmark = pytest.mark.e2e

REQUESTS = 40
BODY = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}


def _scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with httpx.Client(base_url=url, timeout=10) as client:  # a new connection: any worker
        reply = client.get("/metrics")
    assert reply.status_code == 200, reply.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(reply.text)
        for s in family.samples
    }


def _flat(families: list[Metric]) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value for f in families for s in f.samples}


def _successes(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> float:
    labels = {"model": "lin", "version": "1", "transport": "rest", "outcome": "success"}
    return samples.get(("maas_inference_requests_total", frozenset(labels.items())), 0.0)


def test_counts_add_up_across_worker_processes(tmp_path: Path) -> None:
    registry = Registry(f"sqlite:///{tmp_path}/maas.db", LocalStore(tmp_path / "artifacts"))
    registry.upgrade()
    register_upload(registry, "lin", write_linear_model(tmp_path / "m.onnx"), actor="t")
    registry.close()
    with serve_process(tmp_path, workers=2) as server:
        for _ in range(REQUESTS):  # a new connection each: the kernel spreads them
            with httpx.Client(base_url=server.url, timeout=10) as client:
                assert client.post("/v2/models/lin/infer", json=BODY).status_code == 200
        folder = tmp_path / "run" / f"metrics-{server.pid}"
        deadline = time.monotonic() + 60
        agreeing = 0
        while agreeing < 6:  # several scrapes in a row, answered by either worker
            assert time.monotonic() < deadline, "the scrapes never added up to every request"
            samples = _scrape(server.url)
            agreeing = agreeing + 1 if _successes(samples) == REQUESTS else 0
            time.sleep(0.1)
        snapshots = [from_json(path.read_bytes()) for path in folder.glob("*.json")]
        assert len(snapshots) == 2  # one per worker, and both served: the sum is of both
        per_worker = [_successes(_flat(families)) for families in snapshots]
        assert sum(per_worker) == REQUESTS and min(per_worker) > 0, per_worker
        mv = frozenset({"model": "lin", "version": "1"}.items())
        assert samples[("maas_model_loaded", mv)] == 1  # the largest: loaded, not 2
        assert samples[("maas_model_loads_total", mv)] == 2  # each worker loaded it
        duration = samples[
            ("maas_inference_request_duration_seconds_count", mv | {("transport", "rest")})
        ]
        assert duration == REQUESTS
    assert not folder.exists()  # the parent removed it at exit
