"""Serving configs over the management API: set at upload, changed as revisions, validated."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from maas.testing.models import write_linear_model


def _upload(
    client: httpx.Client, name: str, data: bytes, config: object = None, **params: str
) -> httpx.Response:
    headers = {"X-Maas-Config": json.dumps(config)} if config is not None else {}
    return client.post(f"/api/models/{name}/versions", content=data, headers=headers, params=params)


def test_config_given_at_upload_shapes_the_triton_config(
    client: httpx.Client, tmp_path: Path
) -> None:
    data = write_linear_model(tmp_path / "m.onnx").read_bytes()
    config = {
        "batching": {"max_batch_size": 8, "preferred_batch_sizes": [4, 8]},
        "instances": {"count": 1},
    }
    assert _upload(client, "lin", data, config).status_code == 201
    shown = client.get("/api/models/lin/versions/1/config").json()
    assert shown["revision"] == 1
    assert shown["config"]["batching"]["max_batch_size"] == 8
    assert shown["config"]["batching"]["max_queue_delay_s"] == 0.0  # default filled in
    triton = client.get("/v2/models/lin/config").json()
    assert triton["max_batch_size"] == 8
    assert triton["dynamic_batching"]["preferred_batch_size"] == [4, 8]
    assert triton["instance_group"][0]["count"] == 1


def test_config_change_is_a_new_revision_that_the_server_applies(
    client: httpx.Client, tmp_path: Path
) -> None:
    _upload(client, "lin", write_linear_model(tmp_path / "m.onnx").read_bytes())
    assert client.get("/api/models/lin/versions/1/config").json()["revision"] == 0
    reply = client.put(
        "/api/models/lin/versions/1/config", json={"batching": {"max_batch_size": 0}}
    )
    assert reply.status_code == 200 and reply.json()["revision"] == 1
    assert client.get("/v2/models/lin/config").json()["max_batch_size"] == 0
    assert client.get("/v2/models/lin/config").json()["input"][0]["dims"] == [-1, 4]
    events = client.get("/api/audit", params={"model": "lin"}).json()
    assert events[0]["action"] == "config.set"


def test_invalid_configs_are_400_naming_the_field_and_record_nothing(
    client: httpx.Client, tmp_path: Path
) -> None:
    data = write_linear_model(tmp_path / "m.onnx").read_bytes()
    reply = _upload(client, "lin", data, {"batching": {"max_batch_size": -3}})
    assert reply.status_code == 400 and "batching.max_batch_size" in reply.json()["error"]
    assert client.get("/api/models").json() == []
    bad_header = client.post(
        "/api/models/lin/versions", content=data, headers={"X-Maas-Config": "{"}
    )
    assert bad_header.status_code == 400 and "X-Maas-Config" in bad_header.json()["error"]

    _upload(client, "lin", data)
    for document, field in (
        ({"instances": {"count": 0}}, "instances.count"),
        ({"instances": {"kind": "gpu"}}, "instances.kind"),
        ({"batching": {"preferred_batch_sizes": [64]}}, "preferred batch size 64"),
        ({"colour": "red"}, "colour"),
        ({"inputs": [{"name": "x", "datatype": "FP8", "shape": [1]}]}, "inputs.0"),
    ):
        reply = client.put("/api/models/lin/versions/1/config", json=document)
        assert reply.status_code == 400, document
        assert field in reply.json()["error"]
    assert client.get("/api/models/lin/versions/1/config").json()["revision"] == 0
