"""Formats whose files are programs (TorchScript) over a real server: refused by default,
taken only where allowed and from a key with the ``code`` scope, and held to the operator
allowlist; archives built to hurt (bombs, too many members, names outside, links) are
refused before anything inflates them. Nothing refused is registered."""

from __future__ import annotations

import io
import json
import stat
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from maas.config import Settings
from maas.control.access import ApiKeys
from maas.control.uploads import register_upload
from maas.registry import Registry
from maas.testing.models import write_linear_model
from maas.testing.server import running_server

CONFIG = {
    "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
    "outputs": [{"name": "p", "datatype": "FP32", "shape": [-1, 3]}],
}


class ReadsAHostFile(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        leaked = torch.from_file("/etc/hostname", size=3, dtype=torch.uint8)
        return x[:, :3] + leaked.float()


def _torchscript(module: torch.nn.Module) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; it still loads
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(module.eval()), buffer)
    return buffer.getvalue()


def _softmax() -> bytes:
    return _torchscript(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Softmax(dim=1)))


def _upload(
    client: httpx.Client,
    name: str,
    data: bytes,
    *,
    key: str | None = None,
    artifact_format: str = "torchscript",
) -> httpx.Response:
    headers = {"X-Maas-Config": json.dumps(CONFIG), "Content-Type": "application/octet-stream"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return client.post(
        f"/api/models/{name}/versions",
        content=data,
        headers=headers,
        params={"format": artifact_format},
    )


def _registered(registry: Registry) -> list[str]:
    return [model.name for model in registry.list_models()]


@pytest.fixture
def allowing(settings: Settings, local_registry: Registry) -> Iterator[httpx.Client]:
    """A server that takes code artifacts (from keys with the code scope, or from anyone
    while it runs without keys)."""
    with (
        running_server(
            settings.model_copy(update={"allow_code_artifacts": True}), local_registry
        ) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        yield client


def test_a_server_refuses_torchscript_by_default(
    client: httpx.Client, local_registry: Registry
) -> None:
    refused = _upload(client, "ts", _softmax())
    assert refused.status_code == 403, refused.text
    assert refused.json()["details"] == {"format": "torchscript"}
    assert "MAAS_ALLOW_CODE_ARTIFACTS" in refused.json()["error"]
    assert _registered(local_registry) == []


def test_where_allowed_a_torchscript_model_serves(allowing: httpx.Client) -> None:
    reply = _upload(allowing, "ts", _softmax())
    assert reply.status_code == 201, reply.text
    assert reply.json()["signature"]["inputs"] == CONFIG["inputs"]
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 4], "data": [0.5] * 8}]}
    infer = allowing.post("/v2/models/ts/infer", json=body)
    assert infer.status_code == 200, infer.text
    probabilities = np.asarray(infer.json()["outputs"][0]["data"]).reshape(2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), [1.0, 1.0], rtol=1e-6)


def test_where_allowed_only_a_key_with_the_code_scope_uploads_code(
    settings: Settings, local_registry: Registry
) -> None:
    book = ApiKeys(local_registry.keys)
    deploy = book.create("deployer", ["deploy"], actor="test").token
    code = book.create("ml-team", ["deploy", "code"], actor="test").token
    update = {"allow_code_artifacts": True}
    with (
        running_server(settings.model_copy(update=update), local_registry) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        refused = _upload(client, "ts", _softmax(), key=deploy)
        assert refused.status_code == 403 and refused.json()["details"] == {"format": "torchscript"}
        assert _upload(client, "ts", _softmax(), key=code).status_code == 201
    events = local_registry.audit_log("ts", action="version")
    assert events[0].actor.startswith("key:ml-team/")


def test_a_model_that_reads_a_host_file_is_refused_even_where_code_is_allowed(
    allowing: httpx.Client, local_registry: Registry
) -> None:
    refused = _upload(allowing, "evil", _torchscript(ReadsAHostFile()))
    assert refused.status_code == 400, refused.text
    assert "from_file" in refused.json()["error"]
    assert _registered(local_registry) == []


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _with_symlink() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("m/code/__torch__.py", "")
        link = zipfile.ZipInfo("m/data.pkl")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("artifact_format", "archive", "said"),
    [
        ("skops", lambda: _zip({"schema.json": b"{}", "a.npy": bytes(64 * 2**20)}), "zip bomb"),
        ("torchscript", lambda: _zip({f"m/{i}": b"" for i in range(10_001)}), "10001 members"),
        ("torchscript", lambda: _zip({"m/data.pkl": b"", "../m/code/x.py": b""}), "outside"),
        ("torchscript", _with_symlink, "symbolic link"),
    ],
    ids=["skops-bomb", "many-members", "dot-dot", "symlink"],
)
def test_hostile_archives_are_refused_before_they_are_read(
    allowing: httpx.Client,
    local_registry: Registry,
    artifact_format: str,
    archive: object,
    said: str,
) -> None:
    data = archive()  # type: ignore[operator]  # a builder from the table above
    refused = _upload(allowing, "hostile", data, artifact_format=artifact_format)
    assert refused.status_code == 400, refused.text
    assert said in refused.json()["error"]
    assert _registered(local_registry) == []


def test_worker_processes_are_bounded_per_version_and_per_server(
    settings: Settings, local_registry: Registry, tmp_path: Path
) -> None:
    register_upload(local_registry, "lin", write_linear_model(tmp_path / "l.onnx"), actor="t")
    bounded = settings.model_copy(update={"max_worker_processes": 2})
    url_config = "/api/models/lin/versions/1/config"
    with (
        running_server(bounded, local_registry) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        too_many = client.put(url_config, json={"instances": {"count": 17}})
        assert too_many.status_code == 400 and "instances.count" in too_many.json()["error"]
        over = client.put(url_config, json={"instances": {"count": 3, "kind": "process"}})
        assert over.status_code == 409, over.text
        assert "MAAS_MAX_WORKER_PROCESSES" in over.json()["error"]
        within = client.put(url_config, json={"instances": {"count": 2, "kind": "process"}})
        assert within.status_code == 200, within.text
    recorded = local_registry.get_config("lin", 1)
    assert recorded is not None and recorded.revision == 1  # only the one that fits
