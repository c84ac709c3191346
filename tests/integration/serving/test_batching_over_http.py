"""The scheduler behind the real server: no cross-talk, backpressure, timeouts."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from maas.control.uploads import register_upload
from maas.registry import Registry
from maas.testing.models import write_linear_model, write_slow_model


def _body(x: np.ndarray, name: str = "input", **parameters: object) -> dict[str, object]:
    body: dict[str, object] = {
        "inputs": [
            {"name": name, "datatype": "FP32", "shape": list(x.shape), "data": x.ravel().tolist()}
        ]
    }
    if parameters:
        body["parameters"] = parameters
    return body


def test_concurrent_mixed_requests_each_get_their_own_answer(
    client: httpx.Client, local_registry: Registry, tmp_path: Path
) -> None:
    path = write_linear_model(tmp_path / "m.onnx")
    register_upload(
        local_registry, "lin", path, actor="t", config={"batching": {"max_queue_delay_s": 0.005}}
    )
    session = ort.InferenceSession(str(path))
    rng = np.random.default_rng(7)
    inputs = [
        rng.standard_normal((int(rows), 4)).astype(np.float32) for rows in rng.integers(1, 6, 120)
    ]

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=str(client.base_url), timeout=30) as http:
            return await asyncio.gather(
                *(http.post("/v2/models/lin/infer", json=_body(x)) for x in inputs)
            )

    replies = asyncio.run(send_all())
    for x, reply in zip(inputs, replies, strict=True):
        assert reply.status_code == 200, reply.text
        got = np.asarray(reply.json()["outputs"][0]["data"], np.float32).reshape(len(x), 3)
        np.testing.assert_allclose(got, session.run(None, {"input": x})[0], rtol=1e-6, atol=1e-6)
    (stats,) = client.get("/v2/models/lin/stats").json()["model_stats"]
    assert stats["inference_count"] == sum(len(x) for x in inputs)
    assert stats["execution_count"] < len(inputs)  # some requests shared a batch


@pytest.fixture
def slow(local_registry: Registry, tmp_path: Path) -> str:
    config = {"batching": {"max_batch_size": 0, "max_queue_size": 2}, "instances": {"count": 1}}
    register_upload(
        local_registry,
        "slow",
        write_slow_model(tmp_path / "slow.onnx", iterations=300),
        actor="t",
        config=config,
    )
    return "slow"


def test_a_full_queue_answers_503_with_retry_after_at_once(client: httpx.Client, slow: str) -> None:
    busy = _body(np.full((1, 4), 1.0, np.float32), name="x")

    async def flood() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=str(client.base_url), timeout=60) as http:
            return await asyncio.gather(
                *(http.post(f"/v2/models/{slow}/infer", json=busy) for _ in range(8))
            )

    replies = asyncio.run(flood())
    refused = [r for r in replies if r.status_code == 503]
    assert refused, [r.status_code for r in replies]
    assert all(r.json()["code"] == "queue_full" for r in refused)
    assert all(int(r.headers["retry-after"]) >= 1 for r in refused)
    assert any(r.status_code == 200 for r in replies)


def test_an_expired_request_is_never_run_and_gets_504(client: httpx.Client, slow: str) -> None:
    busy = _body(np.full((1, 4), 1.0, np.float32), name="x")
    hurried = _body(np.zeros((1, 4), np.float32), name="x", timeout=1000)  # 1 ms, in µs

    async def race() -> tuple[httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(base_url=str(client.base_url), timeout=60) as http:
            first = asyncio.create_task(http.post(f"/v2/models/{slow}/infer", json=busy))
            await asyncio.sleep(0.2)  # the slow request now occupies the only instance
            second = await http.post(f"/v2/models/{slow}/infer", json=hurried)
            return await first, second

    done, expired = asyncio.run(race())
    assert done.status_code == 200
    assert expired.status_code == 504 and expired.json()["code"] == "deadline_exceeded"
    (stats,) = client.get(f"/v2/models/{slow}/stats").json()["model_stats"]
    assert stats["execution_count"] == 1  # the expired request never reached the runtime


def test_a_bad_timeout_parameter_is_400(client: httpx.Client, slow: str) -> None:
    body = _body(np.zeros((1, 4), np.float32), name="x", timeout="soon")
    reply = client.post(f"/v2/models/{slow}/infer", content=json.dumps(body))
    assert reply.status_code == 400 and "timeout" in reply.json()["error"]


def test_queued_work_of_a_client_that_went_away_is_never_run(
    client: httpx.Client, slow: str
) -> None:
    busy = json.dumps(_body(np.full((1, 4), 1.0, np.float32), name="x")).encode()
    quick = json.dumps(_body(np.zeros((1, 4), np.float32), name="x")).encode()
    host, port = str(client.base_url.host), int(client.base_url.port or 80)

    def raw_request(body: bytes) -> bytes:
        return (
            f"POST /v2/models/{slow}/infer HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    async def scenario() -> None:
        _, first_writer = await asyncio.open_connection(host, port)
        first_writer.write(raw_request(busy))
        await asyncio.sleep(0.3)  # the busy request now runs on the only instance
        _, second_writer = await asyncio.open_connection(host, port)
        second_writer.write(raw_request(quick))
        await asyncio.sleep(0.2)  # queued behind it
        second_writer.close()  # the client goes away before its turn
        await asyncio.sleep(0.1)
        first_writer.close()

    asyncio.run(scenario())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        # The version loads on its first request; on a slow machine it may still be
        # loading here, and its statistics are not there until it is.
        reply = client.get(f"/v2/models/{slow}/stats")
        if reply.status_code == 200 and reply.json()["model_stats"][0]["execution_count"] >= 1:
            break
        time.sleep(0.1)
    time.sleep(0.5)  # time enough for a wrongly kept request to run
    (stats,) = client.get(f"/v2/models/{slow}/stats").json()["model_stats"]
    assert stats["execution_count"] == 1
