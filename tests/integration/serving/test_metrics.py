"""``GET /metrics`` over a real server: after N requests of each outcome over REST JSON,
REST binary (tritonclient http) and gRPC (tritonclient grpc), the counters and histogram
counts equal N per outcome, per version, per transport; batches, loads, unloads, traffic
roles, shadow comparisons and jobs are counted; with ``MAAS_METRICS=false`` it is 404."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.utils import InferenceServerException

from maas.config import Settings
from maas.control.uploads import register_upload
from maas.registry import Registry
from maas.serving.deployments import Deployments
from maas.testing.models import write_linear_model, write_raising_model
from maas.testing.server import Endpoints, serving_endpoints
from tests.integration.serving.load import linear_body, wait_for

N: Final = 3
#: The V2 ``timeout`` parameter, in microseconds: expired before the batcher looks.
_TINY_TIMEOUT_US: Final = 1

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: httpx.Client) -> Samples:
    """Every sample of ``/metrics``, read with prometheus_client's own parser."""
    reply = client.get("/metrics")
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(reply.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """No job runner: the jobs test's jobs stay where it puts them."""
    return Settings(home=tmp_path, refresh_interval_s=0.1, job_concurrency=0)


@pytest.fixture
def endpoints(settings: Settings, local_registry: Registry, tmp_path: Path) -> Iterator[Endpoints]:
    lin = write_linear_model(tmp_path / "lin.onnx")
    register_upload(local_registry, "lin", lin, actor="t")
    capped = {"batching": {"max_requests_per_s": 0.001}}  # one token, then none for 1000 s
    register_upload(local_registry, "capped", lin, actor="t", config=capped)
    raising = write_raising_model(tmp_path / "raising.onnx")
    no_warmup = {"warmup": {"enabled": False}}  # it loads, and fails on every request
    register_upload(local_registry, "raising", raising, actor="t", config=no_warmup)
    with serving_endpoints(settings, local_registry) as found:
        yield found


@pytest.fixture
def client(endpoints: Endpoints) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=endpoints.http_url, timeout=60) as c:
        yield c


def _x(width: int = 4) -> np.ndarray:
    return np.full((1, width), 0.5, np.float32)


def _json_body(width: int = 4, **parameters: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "inputs": [
            {"name": "input", "datatype": "FP32", "shape": [1, width], "data": [0.5] * width}
        ]
    }
    if parameters:
        body["parameters"] = parameters
    return body


def _rest_json(client: httpx.Client, model: str, expected: int, **kw: Any) -> None:
    for _ in range(N):
        reply = client.post(f"/v2/models/{model}/infer", json=_json_body(**kw))
        assert reply.status_code == expected, reply.text


def _rest_binary(url: str, model: str, ok: bool, width: int = 4, **kw: Any) -> None:
    triton = httpclient.InferenceServerClient(url.removeprefix("http://"))
    try:
        for _ in range(N):
            tensor = httpclient.InferInput("input", [1, width], "FP32")
            tensor.set_data_from_numpy(_x(width), binary_data=True)
            outputs = [httpclient.InferRequestedOutput("logits", binary_data=True)]
            if ok:
                triton.infer(model, [tensor], outputs=outputs, **kw)
            else:
                with pytest.raises(InferenceServerException):
                    triton.infer(model, [tensor], outputs=outputs, **kw)
    finally:
        triton.close()


def _grpc(address: str, model: str, ok: bool, width: int = 4, **kw: Any) -> None:
    triton = grpcclient.InferenceServerClient(address)
    try:
        for _ in range(N):
            tensor = grpcclient.InferInput("input", [1, width], "FP32")
            tensor.set_data_from_numpy(_x(width))
            if ok:
                triton.infer(model, [tensor], **kw)
            else:
                with pytest.raises(InferenceServerException):
                    triton.infer(model, [tensor], **kw)
    finally:
        triton.close()


def test_counts_equal_the_requests_of_each_outcome_per_version_and_transport(
    endpoints: Endpoints, client: httpx.Client
) -> None:
    url, address = endpoints.http_url, endpoints.grpc_address
    tiny = {"timeout": _TINY_TIMEOUT_US}
    # success
    _rest_json(client, "lin", 200)
    _rest_binary(url, "lin", ok=True)
    _grpc(address, "lin", ok=True)
    # client_error: an input of the wrong shape (and one body that is not JSON)
    _rest_json(client, "lin", 400, width=5)
    _rest_binary(url, "lin", ok=False, width=5)
    _grpc(address, "lin", ok=False, width=5)
    broken = client.post("/v2/models/lin/infer", content=b"{not json")
    assert broken.status_code == 400
    # timeout: a deadline that passed before the batcher looked at the request
    _rest_json(client, "lin", 504, **tiny)
    _rest_binary(url, "lin", ok=False, timeout=_TINY_TIMEOUT_US)
    _grpc(address, "lin", ok=False, timeout=_TINY_TIMEOUT_US)
    # rejected: one request a 1000 s, spent by the first
    assert client.post("/v2/models/capped/infer", json=_json_body()).status_code == 200
    _rest_json(client, "capped", 429)
    _rest_binary(url, "capped", ok=False)
    _grpc(address, "capped", ok=False)
    # failure: the model raises
    _rest_json(client, "raising", 500)
    _rest_binary(url, "raising", ok=False)
    _grpc(address, "raising", ok=False)
    # unrouted: no such model
    _rest_json(client, "nothing", 404)
    _grpc(address, "nothing", ok=False)

    samples = scrape(client)
    expected = {
        ("lin", "rest"): {"success": 2 * N, "client_error": 2 * N + 1, "timeout": 2 * N},
        ("lin", "grpc"): {"success": N, "client_error": N, "timeout": N},
        ("capped", "rest"): {"success": 1, "rejected": 2 * N},
        ("capped", "grpc"): {"rejected": N},
        ("raising", "rest"): {"failure": 2 * N},
        ("raising", "grpc"): {"failure": N},
    }
    outcomes = ("success", "client_error", "rejected", "timeout", "failure")
    for (model, transport), counts in expected.items():
        labels = {"model": model, "version": "1", "transport": transport}
        for outcome in outcomes:
            got = value(samples, "maas_inference_requests_total", **labels, outcome=outcome)
            assert got == counts.get(outcome, 0), (model, transport, outcome)
        count = value(samples, "maas_inference_request_duration_seconds_count", **labels)
        assert count == sum(counts.values()), (model, transport)
        inf = value(samples, "maas_inference_request_duration_seconds_bucket", **labels, le="+Inf")
        assert inf == count
    for transport in ("rest", "grpc"):
        unrouted = value(
            samples, "maas_inference_unrouted_total", transport=transport, outcome="client_error"
        )
        assert unrouted == N
    # Per batch: the histograms' counts are the batches the V2 statistics counted.
    for model in ("lin", "capped", "raising"):
        (stats,) = client.get(f"/v2/models/{model}/stats").json()["model_stats"]
        mv = {"model": model, "version": "1"}
        for name in ("queue_duration_seconds", "compute_duration_seconds", "batch_size"):
            got = value(samples, f"maas_inference_{name}_count", **mv)
            assert got == stats["execution_count"], (model, name)
        assert value(samples, "maas_inference_batch_size_sum", **mv) == stats["inference_count"]
        assert value(samples, "maas_model_loaded", **mv) == 1
        assert value(samples, "maas_model_loads_total", **mv) == 1
        assert value(samples, "maas_inference_queue_depth", **mv) == 0
        assert value(samples, "maas_inference_in_flight", **mv) == 0
    lin = {"model": "lin", "version": "1"}
    assert value(samples, "maas_inference_batch_size_count", **lin) == 3 * N  # the successes
    assert value(samples, "maas_traffic_routed_total", **lin, role="primary") == 9 * N + 1
    assert value(samples, "maas_build_info", **_build_labels(samples)) == 1
    assert any(name == "process_resident_memory_bytes" for name, _ in samples)


def _build_labels(samples: Samples) -> dict[str, str]:
    (labels,) = (dict(labels) for name, labels in samples if name == "maas_build_info")
    return labels


def test_loads_and_unloads_are_counted(client: httpx.Client) -> None:
    lin = {"model": "lin", "version": "1"}
    assert client.post("/api/models/lin/unload").status_code == 200

    def unloaded() -> bool:
        samples = scrape(client)
        return value(samples, "maas_model_loaded", **lin) == 0

    wait_for("lin to unload", unloaded)
    samples = scrape(client)
    assert value(samples, "maas_model_unloads_total", **lin) == 1
    assert value(samples, "maas_model_evictions_total", **lin) == 0
    assert client.post("/api/models/lin/load").status_code == 200
    wait_for("lin to load again", lambda: value(scrape(client), "maas_model_loaded", **lin) == 1)
    samples = scrape(client)
    assert value(samples, "maas_model_loads_total", **lin) == 2
    assert value(samples, "maas_model_unloads_total", **lin) == 1


def test_a_version_that_fails_to_load_is_counted(
    settings: Settings, local_registry: Registry, tmp_path: Path
) -> None:
    path = write_raising_model(tmp_path / "r.onnx")  # its warm-up fails: it never serves
    register_upload(local_registry, "broken", path, actor="t")
    register_upload(local_registry, "broken", write_linear_model(tmp_path / "l.onnx"), actor="t")
    with (
        serving_endpoints(settings, local_registry) as endpoints,
        httpx.Client(base_url=endpoints.http_url, timeout=60) as client,
    ):
        reply = client.post("/v2/models/broken/versions/1/infer", json=linear_body())
        assert reply.status_code == 503, reply.text
        samples = scrape(client)
    labels = {"model": "broken", "version": "1"}
    assert value(samples, "maas_model_load_failures_total", **labels) == 1
    assert value(samples, "maas_model_loaded", **labels) == 0


def test_traffic_roles_and_shadow_comparisons_are_counted(
    settings: Settings, local_registry: Registry, tmp_path: Path
) -> None:
    for seed in (1, 2, 3):
        path = write_linear_model(tmp_path / f"v{seed}.onnx", seed=seed)
        register_upload(local_registry, "m", path, actor="t")
    local_registry.aliases.set("m", "production", 1, actor="t")
    policy = {
        "split": [{"target": 1, "weight": 3}, {"target": 2, "weight": 1}],
        "shadow": {"target": 3, "fraction": 1},
    }
    with (
        serving_endpoints(settings, local_registry) as endpoints,
        httpx.Client(base_url=endpoints.http_url, timeout=60) as client,
    ):
        assert client.put("/api/models/m/traffic", json=policy).status_code == 200
        for _ in range(8):  # one at a time: exactly 6 to version 1 and 2 to version 2
            assert client.post("/v2/models/m/infer", json=linear_body()).status_code == 200
        for _ in range(N):
            reply = client.post("/v2/models/m/versions/2/infer", json=linear_body())
            assert reply.status_code == 200

        def compared() -> bool:
            found = scrape(client)
            results = ("agree", "disagree", "error")
            return (
                sum(value(found, "maas_shadow_comparisons_total", **v3, result=r) for r in results)
                == 8
            )

        v1, v2, v3 = ({"model": "m", "version": str(n)} for n in (1, 2, 3))
        wait_for("the shadow's comparisons", compared)
        samples = scrape(client)
    assert value(samples, "maas_traffic_routed_total", **v1, role="primary") == 6
    assert value(samples, "maas_traffic_routed_total", **v2, role="canary") == 2
    assert value(samples, "maas_traffic_routed_total", **v2, role="direct") == N
    assert value(samples, "maas_traffic_routed_total", **v3, role="shadow") == 8
    assert value(samples, "maas_shadow_comparisons_total", **v3, result="error") == 0


def test_jobs_by_state_and_epoch_durations(client: httpx.Client, local_registry: Registry) -> None:
    jobs = local_registry.jobs
    first = jobs.submit("digits", {"hyperparameters": {"epochs": 2}}, actor="t")
    jobs.submit("digits", {"hyperparameters": {"epochs": 2}}, actor="t")
    claimed = jobs.claim("test-host", job_id=first.id)
    assert claimed is not None
    jobs.record_epoch(first.id, 1, {"seconds": 2.0}, checkpointed=False)
    jobs.record_epoch(first.id, 2, {"seconds": 40.0}, checkpointed=False)

    def counted() -> bool:
        found = scrape(client)
        return value(found, "maas_job_epoch_duration_seconds_count") == 2

    wait_for("the job book to be read again", counted)
    samples = scrape(client)
    assert value(samples, "maas_jobs", state="running") == 1
    assert value(samples, "maas_jobs", state="queued") == 1
    assert value(samples, "maas_jobs", state="failed") == 0
    assert value(samples, "maas_jobs_running") == 1
    assert value(samples, "maas_job_epoch_duration_seconds_sum") == 42.0
    assert value(samples, "maas_job_epoch_duration_seconds_bucket", le="30.0") == 1


def test_with_metrics_off_the_route_is_404_and_nothing_is_recorded(
    settings: Settings, local_registry: Registry, tmp_path: Path
) -> None:
    register_upload(local_registry, "lin", write_linear_model(tmp_path / "l.onnx"), actor="t")
    off = settings.model_copy(update={"metrics": False})
    with (
        serving_endpoints(off, local_registry) as endpoints,
        httpx.Client(base_url=endpoints.http_url, timeout=60) as client,
    ):
        assert client.post("/v2/models/lin/infer", json=linear_body()).status_code == 200
        reply = client.get("/metrics")
        assert reply.status_code == 404 and reply.json()["code"] == "not_found"
        (stats,) = client.get("/v2/models/lin/stats").json()["model_stats"]
        assert stats["inference_stats"]["success"]["count"] == 1  # V2 statistics go on

    async def served_without_metrics() -> None:
        deployments = Deployments(local_registry, metrics=False)
        await deployments.sync(force=True)
        deployment, _ = await deployments.route("lin")
        assert deployment.stats.metrics is None
        assert deployments.metrics == {}
        await deployments.close()

    asyncio.run(served_without_metrics())
