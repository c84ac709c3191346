"""The management API over a real server: uploads, versions, aliases, audit, OpenAPI."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import httpx
import pytest

from maas.registry import Registry
from maas.testing.models import write_linear_model


def _artifact_files(tmp_path: Path) -> list[Path]:
    root = tmp_path / "artifacts" / "sha256"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _upload(client: httpx.Client, name: str, data: bytes, key: str | None = None) -> httpx.Response:
    headers = {} if key is None else {"Idempotency-Key": key}
    return client.post(f"/api/models/{name}/versions", content=data, headers=headers)


def test_upload_registers_and_serves_a_new_version(client: httpx.Client, tmp_path: Path) -> None:
    data = write_linear_model(tmp_path / "m.onnx").read_bytes()
    reply = _upload(client, "lin", data)
    assert reply.status_code == 201, reply.text
    version = reply.json()
    assert version["model"] == "lin" and version["version"] == 1 and version["format"] == "onnx"
    assert version["signature"]["inputs"] == [
        {"name": "input", "datatype": "FP32", "shape": [-1, 4]}
    ]
    assert version["lineage"]["source"] == "upload"
    retry = _upload(client, "lin", data)  # the same bytes again at once: taken as a retry
    assert retry.status_code == 200 and retry.json()["version"] == 1
    assert _upload(client, "lin", data, key="new").json()["version"] == 2  # a new request

    listed = client.get("/api/models").json()
    assert [(m["name"], m["versions"]) for m in listed] == [("lin", [1, 2])]
    assert (
        client.get("/api/models/lin/versions/1").json()["artifact_sha256"]
        == (version["artifact_sha256"])
    )
    assert [v["version"] for v in client.get("/api/models/lin/versions").json()] == [1, 2]
    infer = client.post(
        "/v2/models/lin/infer",
        json={"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [1] * 4}]},
    )
    assert infer.status_code == 200 and infer.json()["model_version"] == "2"


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"weights": [1, 2]}))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (pickle.dumps({"weights": [1.0, 2.0]}), "pickle"),
        (pickle.dumps([1, 2, 3], protocol=2), "pickle"),
        (_zip_bytes(), "zip archive"),
        (b"definitely not onnx", "not a loadable ONNX model"),
        (b"", "not a loadable ONNX model"),
    ],
)
def test_bad_upload_is_400_and_registers_nothing(
    client: httpx.Client, local_registry: Registry, tmp_path: Path, data: bytes, fragment: str
) -> None:
    reply = _upload(client, "bad", data)
    assert reply.status_code == 400, reply.text
    assert fragment in reply.json()["error"]
    assert reply.json()["code"] == "invalid_artifact"
    assert local_registry.list_models() == []
    assert _artifact_files(tmp_path) == []
    assert local_registry.audit_log() == []


def test_upload_with_unknown_format_or_bad_name_is_400(
    client: httpx.Client, tmp_path: Path
) -> None:
    data = write_linear_model(tmp_path / "m.onnx").read_bytes()
    reply = client.post("/api/models/lin/versions", params={"format": "pickle"}, content=data)
    assert reply.status_code == 400 and "no runtime for format 'pickle'" in reply.json()["error"]
    reply = _upload(client, "bad name!", data)
    assert reply.status_code == 400
    assert _artifact_files(tmp_path) == []


def test_aliases_route_default_traffic(client: httpx.Client, tmp_path: Path) -> None:
    data = write_linear_model(tmp_path / "m.onnx").read_bytes()
    _upload(client, "lin", data, key="first")
    _upload(client, "lin", data, key="second")
    body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [0] * 4}]}

    reply = client.put("/api/models/lin/aliases/production", json={"version": 1})
    assert reply.status_code == 200
    assert reply.json()["alias"] == "production" and reply.json()["version"] == 1
    assert client.post("/v2/models/lin/infer", json=body).json()["model_version"] == "1"
    assert client.get("/v2/models/lin/versions/production").json()["name"] == "lin"

    client.put("/api/models/lin/aliases/staging", json={"version": 2})
    served = client.post("/v2/models/lin/versions/staging/infer", json=body).json()
    assert served["model_version"] == "2"
    assert client.get("/api/models/lin").json()["aliases"] == {"production": 1, "staging": 2}

    assert client.delete("/api/models/lin/aliases/production").status_code == 204
    assert client.post("/v2/models/lin/infer", json=body).json()["model_version"] == "2"


def test_alias_to_a_missing_version_is_refused_and_changes_nothing(
    client: httpx.Client, local_registry: Registry, tmp_path: Path
) -> None:
    _upload(client, "lin", write_linear_model(tmp_path / "m.onnx").read_bytes())
    client.put("/api/models/lin/aliases/production", json={"version": 1})
    events = len(local_registry.audit_log())

    reply = client.put("/api/models/lin/aliases/production", json={"version": 5})
    assert reply.status_code == 404
    assert "version 5" in reply.json()["error"]
    assert client.get("/api/models/lin").json()["aliases"] == {"production": 1}
    assert len(local_registry.audit_log()) == events

    assert client.put("/api/models/lin/aliases/staging", json={"version": "x"}).status_code == 404
    for body in ({"version": 0}, {"version": "not an alias!"}, {}, [1]):
        assert client.put("/api/models/lin/aliases/staging", json=body).status_code == 400
    bad_name = client.put("/api/models/lin/aliases/Not%20Valid", json={"version": 1})
    assert bad_name.status_code == 400
    ghost = client.put("/api/models/ghost/aliases/production", json={"version": 1})
    assert ghost.status_code == 404


def test_audit_log_records_every_change(client: httpx.Client, tmp_path: Path) -> None:
    _upload(client, "lin", write_linear_model(tmp_path / "m.onnx").read_bytes())
    client.put("/api/models/lin/aliases/production", json={"version": 1})
    events = client.get("/api/audit", params={"model": "lin"}).json()
    assert [e["action"] for e in events] == ["alias.set", "version.create", "model.create"]
    assert {e["actor"] for e in events} == {"api:127.0.0.1"}  # the caller's address


def test_unknown_things_are_404(client: httpx.Client) -> None:
    assert client.get("/api/models/ghost").status_code == 404
    assert client.get("/api/models/ghost/versions").status_code == 404
    assert client.get("/api/models/ghost/versions/1").json()["code"] == "not_found"


def test_openapi_documents_the_management_api(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    documented = (
        "/api/models",
        "/api/models/{name}/versions",
        "/api/models/{name}/aliases/{alias}",
    )
    for path in documented:
        assert path in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_gate_refuses_an_ungated_promotion_over_http_unless_forced(
    client: httpx.Client, local_registry: Registry, tmp_path: Path
) -> None:
    path = write_linear_model(tmp_path / "m.onnx")
    _upload(client, "lin", path.read_bytes())
    version = local_registry.resolve("lin")
    for accuracy in (0.97, 0.80):
        local_registry.register_version(
            "lin",
            path,
            artifact_format="onnx",
            signature=version.signature,
            metrics={"accuracy": accuracy},
            actor="t",
        )
    reply = client.put(
        "/api/models/lin/gate", json={"rules": [{"metric": "accuracy", "min": 0.95}]}
    )
    assert reply.status_code == 200 and reply.json()["rules"] == [
        {"metric": "accuracy", "min": 0.95}
    ]
    assert client.put("/api/models/lin/aliases/production", json={"version": 2}).status_code == 200

    refused = client.put("/api/models/lin/aliases/production", json={"version": 3})
    assert refused.status_code == 409 and refused.json()["code"] == "gate_failed"
    assert refused.json()["details"]["failed"] == ["accuracy 0.8 < min 0.95"]
    no_reason = client.put("/api/models/lin/aliases/production", json={"version": 3, "force": True})
    assert no_reason.status_code == 400
    forced = client.put(
        "/api/models/lin/aliases/production",
        json={"version": 3, "force": True, "reason": "customer escalation"},
    )
    assert forced.status_code == 200
    event = client.get("/api/audit", params={"model": "lin"}).json()[0]
    assert (
        event["details"]["forced"] is True and event["details"]["reason"] == "customer escalation"
    )
    bad = client.put("/api/models/lin/gate", json={"rules": [{"metric": "accuracy"}]})
    assert bad.status_code == 400
