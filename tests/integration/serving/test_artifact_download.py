"""A version's artifacts over the management API of a real server: listed and downloadable."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from maas.registry import Registry
from maas.testing.models import write_linear_model


def test_versions_list_and_serve_every_artifact(
    client: httpx.Client, local_registry: Registry, tmp_path: Path
) -> None:
    onnx_file = write_linear_model(tmp_path / "m.onnx")
    extra = tmp_path / "m.pt"
    extra.write_bytes(b"torchscript archive bytes")
    served = client.post("/api/models/lin/versions", content=onnx_file.read_bytes()).json()
    version = local_registry.register_version(
        "lin",
        onnx_file,
        artifact_format="onnx",
        signature=local_registry.get_version("lin", 1).signature,
        extra_artifacts={"torchscript": extra},
    )
    assert served["artifacts"] == {
        "onnx": {"sha256": served["artifact_sha256"], "size_bytes": served["size_bytes"]}
    }
    shown = client.get("/api/models/lin/versions/2").json()
    assert shown["artifacts"]["torchscript"] == {
        "sha256": hashlib.sha256(extra.read_bytes()).hexdigest(),
        "size_bytes": len(extra.read_bytes()),
    }
    assert shown["artifacts"] == version.artifacts

    reply = client.get("/api/models/lin/versions/2/artifacts/torchscript")
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/octet-stream"
    assert 'filename="lin-2.pt"' in reply.headers["content-disposition"]
    assert reply.content == extra.read_bytes()

    client.put("/api/models/lin/aliases/staging", json={"version": 2})
    reply = client.get("/api/models/lin/versions/staging/artifacts/onnx")
    assert reply.status_code == 200
    assert reply.content == onnx_file.read_bytes()


def test_a_missing_artifact_is_a_404_naming_what_exists(
    client: httpx.Client, tmp_path: Path
) -> None:
    client.post(
        "/api/models/lin/versions", content=write_linear_model(tmp_path / "m.onnx").read_bytes()
    )
    reply = client.get("/api/models/lin/versions/1/artifacts/torchscript")
    assert reply.status_code == 404
    body = reply.json()
    assert body["code"] == "not_found"
    assert "no 'torchscript' artifact; it has: onnx" in body["error"]
    assert body["details"]["available"] == ["onnx"]
    assert client.get("/api/models/nope/versions/1/artifacts/onnx").json()["code"] == "not_found"
    assert client.get("/api/models/lin/versions/7/artifacts/onnx").status_code == 404
