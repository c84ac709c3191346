"""The V2 model-repository extension as tritonclient speaks it, over HTTP and gRPC:
``get_model_repository_index``, ``load_model`` and ``unload_model`` work unchanged."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from maas.config import Settings
from maas.control.uploads import register_upload
from maas.registry import Registry
from maas.testing.models import write_linear_model
from maas.testing.server import Endpoints, serving_endpoints

_CONFIG = json.dumps({"backend": "onnxruntime", "max_batch_size": 8})


@pytest.fixture
def endpoints(settings: Settings, local_registry: Registry, tmp_path: Path) -> Iterator[Endpoints]:
    """``m`` (version 1) and ``other`` (version 1) registered, then a server over them."""
    for name in ("m", "other"):
        path = write_linear_model(tmp_path / f"{name}.onnx", seed=len(name))
        register_upload(local_registry, name, path, actor="test")
    with serving_endpoints(settings, local_registry) as found:
        yield found


@pytest.fixture
def http_client(endpoints: Endpoints) -> Iterator[Any]:
    client = httpclient.InferenceServerClient(endpoints.http_url.removeprefix("http://"))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def grpc_client(endpoints: Endpoints) -> Iterator[Any]:
    client = grpcclient.InferenceServerClient(endpoints.grpc_address)
    try:
        yield client
    finally:
        client.close()


def _http_infer(client: Any) -> str:
    tensor = httpclient.InferInput("input", [1, 4], "FP32")
    tensor.set_data_from_numpy(np.ones((1, 4), np.float32))
    version: str = client.infer("m", [tensor]).get_response()["model_version"]
    return version


def _grpc_infer(client: Any) -> str:
    tensor = grpcclient.InferInput("input", [1, 4], "FP32")
    tensor.set_data_from_numpy(np.ones((1, 4), np.float32))
    version: str = client.infer("m", [tensor]).get_response().model_version
    return version


def _states(entries: list[dict[str, str]]) -> dict[tuple[str, str], tuple[str, str]]:
    return {(e["name"], e["version"]): (e["state"], e["reason"]) for e in entries}


def _audit(endpoints: Endpoints) -> list[str]:
    events = httpx.get(f"{endpoints.http_url}/api/audit", params={"model": "m"}).json()
    return [e["action"] for e in events if e["action"].startswith("deployment.")]


def test_tritonclient_http_index_unload_and_load(http_client: Any, endpoints: Endpoints) -> None:
    index = _states(http_client.get_model_repository_index())
    assert index == {("m", "1"): ("READY", ""), ("other", "1"): ("READY", "")}
    assert _http_infer(http_client) == "1"

    http_client.unload_model("m")
    assert not http_client.is_model_ready("m")
    assert not http_client.is_model_ready("m", "1")
    with pytest.raises(InferenceServerException, match="unloaded"):
        _http_infer(http_client)
    index = _states(http_client.get_model_repository_index())
    assert index == {("m", ""): ("UNAVAILABLE", "unloaded"), ("other", "1"): ("READY", "")}
    rows = httpx.get(f"{endpoints.http_url}/api/deployments", params={"model": "m"}).json()
    assert [(r["version"], r["state"]) for r in rows] == [(None, "unloaded")]
    http_client.unload_model("m")  # unloading twice is harmless, as in Triton

    http_client.load_model("m")
    assert http_client.is_model_ready("m") and http_client.is_model_ready("m", "1")
    assert _http_infer(http_client) == "1"
    assert _states(http_client.get_model_repository_index())[("m", "1")] == ("READY", "")
    assert _audit(endpoints) == ["deployment.load", "deployment.unload"]


def test_tritonclient_grpc_index_unload_and_load(grpc_client: Any, endpoints: Endpoints) -> None:
    index = grpc_client.get_model_repository_index(as_json=True)["models"]
    assert _states([{"reason": "", **e} for e in index]) == {
        ("m", "1"): ("READY", ""),
        ("other", "1"): ("READY", ""),
    }
    assert _grpc_infer(grpc_client) == "1"

    grpc_client.unload_model("m")
    assert not grpc_client.is_model_ready("m")
    with pytest.raises(InferenceServerException) as caught:
        _grpc_infer(grpc_client)
    assert str(caught.value.status()) == "StatusCode.UNAVAILABLE"
    assert "unloaded" in caught.value.message()
    models = grpc_client.get_model_repository_index().models
    assert {(e.name, e.version, e.state, e.reason) for e in models} == {
        ("m", "", "UNAVAILABLE", "unloaded"),
        ("other", "1", "READY", ""),
    }
    assert grpc_client.is_model_ready("other")  # the other model is not touched

    grpc_client.load_model("m")
    assert grpc_client.is_model_ready("m")
    assert _grpc_infer(grpc_client) == "1"
    assert _audit(endpoints) == ["deployment.load", "deployment.unload"]


def test_load_with_a_config_or_files_is_refused_clearly(
    http_client: Any, grpc_client: Any, endpoints: Endpoints
) -> None:
    with pytest.raises(InferenceServerException) as caught:
        http_client.load_model("m", config=_CONFIG)
    assert "load takes no parameters" in caught.value.message()
    assert "upload a new version" in caught.value.message()

    # tritonclient.http cannot send files itself (it puts bytes in JSON); the body it means:
    files = {"config": _CONFIG, "file:1/model.onnx": base64.b64encode(b"onnx").decode()}
    reply = httpx.post(
        f"{endpoints.http_url}/v2/repository/models/m/load", json={"parameters": files}
    )
    assert reply.status_code == 400 and reply.json()["code"] == "invalid_input"
    assert reply.json()["details"] == {"field": "parameters"}

    for kwargs in ({"config": _CONFIG}, {"config": _CONFIG, "files": {"file:1/m.onnx": b"x"}}):
        with pytest.raises(InferenceServerException) as caught:
            grpc_client.load_model("m", **kwargs)
        assert str(caught.value.status()) == "StatusCode.INVALID_ARGUMENT"
        assert "load takes no parameters" in caught.value.message()
    assert _audit(endpoints) == []  # nothing was loaded or unloaded
    assert _http_infer(http_client) == "1"


def test_repository_calls_on_unknown_models_are_not_found(
    http_client: Any, grpc_client: Any, endpoints: Endpoints
) -> None:
    for call in (http_client.load_model, http_client.unload_model):
        with pytest.raises(InferenceServerException, match="ghost"):
            call("ghost")
    for call in (grpc_client.load_model, grpc_client.unload_model):
        with pytest.raises(InferenceServerException) as caught:
            call("ghost")
        assert str(caught.value.status()) == "StatusCode.NOT_FOUND"
    for action in ("load", "unload"):
        reply = httpx.post(f"{endpoints.http_url}/v2/repository/models/ghost/{action}")
        assert reply.status_code == 404 and reply.json()["code"] == "not_found"
