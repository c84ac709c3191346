"""The statuses V2 clients expect for version references and unknown models, REST and gRPC.

A version reference is ASCII digits (1 to 2**31 - 1) or an alias name; anything else
(4096 digits, superscript or Arabic-Indic digits, zero, a sign) is 400 /
INVALID_ARGUMENT naming it, never a 500 or a 404. An unknown model is 404 / NOT_FOUND
before its request body is even judged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from maas.config import Settings
from maas.control.uploads import register_upload
from maas.registry import Registry
from maas.testing.models import write_linear_model
from maas.testing.server import Endpoints, serving_endpoints
from tests.integration.serving.load import linear_body

BAD_REFS = {
    "4096 digits": "9" * 4096,
    "superscript two": "\u00b2",
    "Arabic-Indic three": "\u0663",
    "Devanagari one": "\u0967",
    "fullwidth one": "\uff11",
    "zero": "0",
    "past the largest version": "2147483648",
    "negative": "-1",
    "decimal": "1.0",
    "upper-case alias": "Production",
}


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    """One server for the module: ``digits`` version 1; nothing here changes it."""
    home = tmp_path_factory.mktemp("refs")
    settings = Settings(home=home, refresh_interval_s=0.1)
    registry = Registry.from_settings(settings)
    try:
        register_upload(registry, "digits", write_linear_model(home / "d.onnx"), actor="test")
        with serving_endpoints(settings, registry) as found:
            yield found
    finally:
        registry.close()


@pytest.fixture(scope="module")
def client(endpoints: Endpoints) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=endpoints.http_url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def triton(endpoints: Endpoints) -> Iterator[Any]:
    found = grpcclient.InferenceServerClient(endpoints.grpc_address)
    try:
        yield found
    finally:
        found.close()


def _invalid(reply: httpx.Response) -> None:
    assert reply.status_code == 400, reply.text[:300]
    body = reply.json()
    assert body["code"] == "invalid_input"
    assert "version" in body["error"]
    assert len(body["error"]) < 300  # 4096 digits are not echoed back whole


@pytest.mark.parametrize("ref", list(BAD_REFS.values()), ids=list(BAD_REFS))
def test_bad_version_references_are_400_over_rest(client: httpx.Client, ref: str) -> None:
    base = f"/v2/models/digits/versions/{quote(ref)}"
    for path in (base, f"{base}/ready", f"{base}/config", f"{base}/stats"):
        _invalid(client.get(path))
    _invalid(client.post(f"{base}/infer", json=linear_body()))
    _invalid(client.post(f"{base}/infer", json={"inputs": []}))
    _invalid(client.get(f"/api/models/digits/versions/{quote(ref)}"))


@pytest.mark.parametrize("ref", list(BAD_REFS.values()), ids=list(BAD_REFS))
def test_bad_version_references_are_invalid_argument_over_grpc(triton: Any, ref: str) -> None:
    tensor = grpcclient.InferInput("input", [1, 4], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 4), np.float32))
    calls: dict[str, Callable[[], object]] = {
        "metadata": lambda: triton.get_model_metadata("digits", ref),
        "ready": lambda: triton.is_model_ready("digits", ref),
        "config": lambda: triton.get_model_config("digits", ref),
        "statistics": lambda: triton.get_inference_statistics("digits", ref),
        "infer": lambda: triton.infer("digits", [tensor], model_version=ref),
    }
    for what, call in calls.items():
        with pytest.raises(InferenceServerException) as caught:
            call()
        assert str(caught.value.status()) == "StatusCode.INVALID_ARGUMENT", what
        assert "version" in caught.value.message(), what


def test_unknown_models_and_versions_are_404(client: httpx.Client) -> None:
    reply = client.post("/v2/models/no-such-model/infer", json={"inputs": []})
    assert reply.status_code == 404 and reply.json()["code"] == "not_found"
    assert "no-such-model" in reply.json()["error"]
    assert client.post("/v2/models/no-such-model/infer", content=b"{").status_code == 404
    assert client.get("/v2/models/no-such-model").status_code == 404
    assert client.get("/v2/models/no-such-model/ready").status_code == 404
    for ref in ("7", "2147483647", "staging"):
        assert client.get(f"/v2/models/digits/versions/{ref}").status_code == 404, ref
        reply = client.post(f"/v2/models/digits/versions/{ref}/infer", json=linear_body())
        assert reply.status_code == 404 and reply.json()["code"] == "not_found", ref
    assert client.get("/v2/models/digits/versions/1").status_code == 200


def test_unknown_models_and_versions_are_not_found_over_grpc(triton: Any) -> None:
    tensor = grpcclient.InferInput("input", [1, 4], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 4), np.float32))
    calls: list[Callable[[], object]] = [
        lambda: triton.infer("no-such-model", [tensor]),
        lambda: triton.get_model_metadata("no-such-model"),
        lambda: triton.infer("digits", [tensor], model_version="7"),
        lambda: triton.get_model_metadata("digits", "staging"),
    ]
    for call in calls:
        with pytest.raises(InferenceServerException) as caught:
            call()
        assert str(caught.value.status()) == "StatusCode.NOT_FOUND"
    assert triton.infer("digits", [tensor], model_version="1").as_numpy("logits").shape == (1, 3)


@pytest.mark.parametrize("ref", [*BAD_REFS.values(), 2**40, 0, -3, True], ids=repr)
def test_bad_version_references_in_management_bodies_are_400(
    client: httpx.Client, ref: object
) -> None:
    """Moving an alias or promoting to such a reference is refused before anything moves."""
    _invalid(client.put("/api/models/digits/aliases/staging", json={"version": ref}))
    _invalid(client.post("/api/models/digits/promote", json={"version": ref}))
    assert client.get("/api/models/digits").json()["aliases"] == {}
