"""What a real server tells callers when things fail: the reason in words, never a
traceback, an exception class or a path of the server's; the whole reason in its log.
And the statuses of failures a client provokes on purpose (huge ids, a full queue)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]  # grpcio ships no type stubs
import httpx
import numpy as np
import onnxruntime as ort
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc

from maas.config import Settings
from maas.control.uploads import register_upload
from maas.errors import NotFoundError
from maas.registry import Registry
from maas.testing.models import write_raising_model, write_slow_model
from maas.testing.server import Endpoints, serving_endpoints
from tests.integration.serving.load import linear_body

# A path with two or more parts that starts a word: what a leaked server path looks like.
_PATH = re.compile(r"(?<![\w.:/])/[^\s/'\"]+/[^\s'\"]+")
_NO_WARMUP = {"warmup": {"enabled": False}}


def _assert_clean(text: str, *, classes: tuple[str, ...], home: Path) -> None:
    assert "Traceback" not in text and 'File "' not in text, text
    assert str(home) not in text and "/tmp/" not in text, text
    assert not _PATH.search(text), text
    for name in classes:
        assert not re.search(rf"\b{re.escape(name)}\b", text), (name, text)


def _model_exception_class(path: Path) -> str:
    """The class of what ONNX Runtime raises when the raising model runs, found by running it."""
    session = ort.InferenceSession(str(path))
    with pytest.raises(Exception) as raised:
        session.run(None, {"input": np.zeros((2, 4), np.float32)})
    return type(raised.value).__name__


@pytest.fixture
def endpoints(settings: Settings, local_registry: Registry) -> Iterator[Endpoints]:
    with serving_endpoints(settings, local_registry) as found:
        yield found


@pytest.fixture
def raising(local_registry: Registry, tmp_path: Path) -> str:
    path = write_raising_model(tmp_path / "raising.onnx")
    register_upload(local_registry, "raising", path, actor="t", config=_NO_WARMUP)
    return _model_exception_class(path)


def test_a_model_that_raises_answers_500_in_words_and_logs_the_reason(
    endpoints: Endpoints, raising: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO), httpx.Client(base_url=endpoints.http_url) as http:
        reply = http.post("/v2/models/raising/infer", json=linear_body(2), timeout=60)
    assert reply.status_code == 500, reply.text
    body: dict[str, Any] = reply.json()
    assert body["code"] == "model_error"
    assert body["error"].startswith("the model failed: ") and "Gather" in body["error"]
    _assert_clean(reply.text, classes=(raising, "RuntimeError", "Exception"), home=tmp_path)
    failed = [r for r in caplog.records if r.getMessage().startswith("the model failed on a batch")]
    assert failed and failed[0].levelno == logging.ERROR and failed[0].exc_info is not None
    assert type(failed[0].exc_info[1]).__name__ == raising  # the whole reason, in the log


def test_a_model_that_raises_answers_internal_over_grpc_in_words(
    endpoints: Endpoints, raising: str, tmp_path: Path
) -> None:
    request = service_pb2.ModelInferRequest(model_name="raising")
    request.inputs.add(name="input", datatype="FP32", shape=[2, 4])
    request.raw_input_contents.append(np.zeros((2, 4), "<f4").tobytes())
    with grpc.insecure_channel(endpoints.grpc_address) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(request, timeout=60)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    message = caught.value.details()
    assert message.startswith("the model failed: ") and "Gather" in message
    _assert_clean(message, classes=(raising, "RuntimeError", "Exception"), home=tmp_path)


# --- job ids: bounded, so a huge one is a 400 or a 404, never the driver's OverflowError ---


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/jobs/{id}/cancel"),
        ("POST", "/api/jobs/{id}/resume"),
        ("GET", "/api/jobs/{id}"),
        ("GET", "/api/jobs/{id}/metrics"),
        ("GET", "/api/jobs/{id}/logs"),
    ],
)
def test_job_ids_beyond_64_bits_are_refused_and_the_largest_is_not_found(
    client: httpx.Client, method: str, path: str
) -> None:
    for job_id in (2**63, 2**64, 10**30, 0, -1):
        reply = client.request(method, path.format(id=job_id))
        assert reply.status_code == 400, (job_id, reply.text)
        assert reply.json()["code"] == "invalid_input"
    largest = client.request(method, path.format(id=2**63 - 1))
    assert largest.status_code == 404, largest.text
    assert largest.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "url", ["/api/jobs/1/logs?after=18446744073709551616", "/api/audit?before=18446744073709551616"]
)
def test_paging_ids_beyond_64_bits_are_refused(client: httpx.Client, url: str) -> None:
    reply = client.get(url)
    assert reply.status_code == 400, reply.text


def test_the_job_book_finds_no_job_beyond_the_database_range(local_registry: Registry) -> None:
    for job_id in (2**63, 2**70, 0, -5):
        with pytest.raises(NotFoundError):
            local_registry.jobs.get(job_id)
        with pytest.raises(NotFoundError):
            local_registry.jobs.cancel(job_id)


# --- a full queue over gRPC: RESOURCE_EXHAUSTED, as Triton answers; logged at INFO ----------


@pytest.fixture
def slow(local_registry: Registry, tmp_path: Path) -> str:
    config = {"batching": {"max_batch_size": 0, "max_queue_size": 1}, "instances": {"count": 1}}
    path = write_slow_model(tmp_path / "slow.onnx", iterations=100)
    register_upload(local_registry, "slow", path, actor="t", config=config)
    return "slow"


def test_a_full_queue_answers_resource_exhausted_over_grpc_and_is_no_error_in_the_log(
    endpoints: Endpoints, slow: str, caplog: pytest.LogCaptureFixture
) -> None:
    request = service_pb2.ModelInferRequest(model_name=slow)
    request.inputs.add(name="x", datatype="FP32", shape=[1, 4])
    request.raw_input_contents.append(np.ones((1, 4), "<f4").tobytes())
    with caplog.at_level(logging.INFO), grpc.insecure_channel(endpoints.grpc_address) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        stub.ModelMetadata(service_pb2.ModelMetadataRequest(name=slow), timeout=60)  # loaded
        calls = [stub.ModelInfer.future(request, timeout=120) for _ in range(8)]
        outcomes = []
        for call in calls:
            try:
                call.result()
                outcomes.append(grpc.StatusCode.OK)
            except grpc.RpcError as error:
                outcomes.append(error.code())
    assert grpc.StatusCode.OK in outcomes, outcomes
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in outcomes, outcomes
    assert set(outcomes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, outcomes
    refused = [r for r in caplog.records if r.getMessage().startswith("queue_full: ")]
    assert refused and all(r.levelno == logging.INFO for r in refused)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
