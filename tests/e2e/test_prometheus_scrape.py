"""A real Prometheus (Debian's ``prometheus``) scrapes maas every second with a read key
as its bearer token, as docs/metrics.md configures it, and answers PromQL with the
number of requests sent.

Skipped when ``prometheus`` is not installed, unless ``MAAS_TEST_REQUIRE_PROMETHEUS=1``
(CI: ``.ci/run`` installs it), where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from maas.config import Settings
from maas.control.access import ApiKeys
from maas.control.uploads import register_upload
from maas.registry import Registry
from maas.store import LocalStore
from maas.testing.models import write_linear_model
from maas.testing.processes import free_port, stop_process
from maas.testing.server import serving_endpoints

pytestmark = pytest.mark.e2e

REQUESTS = 7
BODY = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}


def _prometheus() -> str:
    found = shutil.which("prometheus")
    if found is None:
        reason = "the prometheus server is not installed (apt-get install prometheus)"
        if os.environ.get("MAAS_TEST_REQUIRE_PROMETHEUS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def _config(target: str, token: str) -> str:
    """The scrape config of docs/metrics.md, every second (JSON is YAML)."""
    job = {
        "job_name": "maas",
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "metrics_path": "/metrics",
        "authorization": {"type": "Bearer", "credentials": token},
        "static_configs": [{"targets": [target]}],
    }
    return json.dumps({"global": {"scrape_interval": "1s"}, "scrape_configs": [job]})


@pytest.fixture
def scraped(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """maas (keys required) with a linear model, scraped by Prometheus on loopback with a
    read key: yields the maas URL, the Prometheus URL and a predict key."""
    binary = _prometheus()
    registry = Registry(f"sqlite:///{tmp_path}/maas.db", LocalStore(tmp_path / "artifacts"))
    registry.upgrade()
    register_upload(registry, "lin", write_linear_model(tmp_path / "m.onnx"), actor="t")
    keys = ApiKeys(registry.keys)
    scraper = keys.create("prometheus", ["read"], actor="t").token
    caller = keys.create("caller", ["predict"], actor="t").token
    settings = Settings(home=tmp_path, job_concurrency=0, auth="required")
    try:
        with serving_endpoints(settings, registry) as endpoints:
            port = free_port()
            config = tmp_path / "prometheus.yml"
            config.write_text(_config(endpoints.http_url.removeprefix("http://"), scraper))
            with (tmp_path / "prometheus.log").open("wb") as log:
                process = subprocess.Popen(
                    [
                        binary,
                        f"--config.file={config}",
                        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                        f"--web.listen-address=127.0.0.1:{port}",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                try:
                    yield endpoints.http_url, f"http://127.0.0.1:{port}", caller
                finally:
                    stop_process(process)
    finally:
        registry.close()


def _query(url: str, promql: str) -> float | None:
    """The value of a one-sample instant vector, or None while Prometheus has none."""
    try:
        reply = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=5)
    except httpx.TransportError:
        return None  # not listening yet
    if reply.status_code != 200:
        return None
    result = reply.json()["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_prometheus_counts_the_requests_sent(scraped: tuple[str, str, str]) -> None:
    maas, prometheus, key = scraped
    with httpx.Client(base_url=maas, timeout=30) as client:
        headers = {"Authorization": f"Bearer {key}"}
        for _ in range(REQUESTS):
            reply = client.post("/v2/models/lin/infer", json=BODY, headers=headers)
            assert reply.status_code == 200, reply.text
        assert client.get("/metrics", headers=headers).status_code == 403  # predict: no
    deadline = time.monotonic() + 90
    while _query(prometheus, "sum(maas_inference_requests_total)") != REQUESTS:
        assert time.monotonic() < deadline, "Prometheus never saw every request"
        time.sleep(0.25)
    assert _query(prometheus, 'up{job="maas"}') == 1
    ok = 'maas_inference_requests_total{model="lin",version="1",transport="rest",outcome="success"}'
    assert _query(prometheus, ok) == REQUESTS
    assert _query(prometheus, "sum(maas_inference_request_duration_seconds_count)") == REQUESTS
