"""The server follows what the registry says is in service, whoever changed it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from maas.config import Settings
from maas.control.uploads import register_upload
from maas.registry import Registry
from maas.testing.models import write_linear_model, write_nan_model
from maas.testing.server import running_server
from tests.integration.serving.load import DefaultRouteLoad, linear_body, wait_for


@pytest.fixture
def server(settings: Settings, local_registry: Registry, tmp_path: Path) -> Iterator[str]:
    """``m`` versions 1, 2 and 3, production on 1."""
    for seed in (1, 2, 3):
        path = write_linear_model(tmp_path / f"v{seed}.onnx", seed=seed)
        register_upload(local_registry, "m", path, actor="test")
    local_registry.aliases.set("m", "production", 1, actor="test")
    with running_server(settings, local_registry) as url:
        yield url


def _loaded(c: httpx.Client) -> list[int]:
    rows = c.get("/api/deployments").json()
    return sorted(r["version"] for r in rows if r["state"] == "ready")


def test_an_archived_version_stops_answering_even_when_it_was_loaded(server: str) -> None:
    with httpx.Client(base_url=server, timeout=60) as c:
        reply = c.post("/v2/models/m/versions/2/infer", json=linear_body())
        assert reply.status_code == 200 and reply.json()["model_version"] == "2"
        assert _loaded(c) == [1, 2]  # loaded on its first request

        assert c.post("/api/models/m/versions/2/archive", json={"reason": "t"}).status_code == 200
        reply = c.post("/v2/models/m/versions/2/infer", json=linear_body())
        assert reply.status_code == 404, reply.text
        assert "archived" in reply.json()["error"]
        assert c.get("/v2/models/m/versions/2").status_code == 404
        assert c.get("/v2/models/m/versions/2/ready").status_code == 404
        assert _loaded(c) == [1]  # and its memory is let go
        assert c.get("/v2/models/m").json()["versions"] == ["1", "3"]


def test_a_version_archived_by_another_process_is_let_go(
    server: str, local_registry: Registry
) -> None:
    with httpx.Client(base_url=server, timeout=60) as c:
        assert c.post("/v2/models/m/versions/3/infer", json=linear_body()).status_code == 200
        local_registry.archive_version("m", 3, actor="another-process")
        wait_for("version 3 to be let go", lambda: _loaded(c) == [1])
        reply = c.post("/v2/models/m/versions/3/infer", json=linear_body())
        assert reply.status_code == 404 and "archived" in reply.json()["error"]


def test_a_policy_stored_by_another_process_naming_a_failing_version_is_held(
    server: str, local_registry: Registry, tmp_path: Path
) -> None:
    """The control plane warms every target before it stores a policy; a policy written
    straight into the registry is not applied until all of its targets are warm."""
    bad = register_upload(local_registry, "m", write_nan_model(tmp_path / "nan.onnx"), actor="t")
    with DefaultRouteLoad(server, "m") as load, httpx.Client(base_url=server, timeout=60) as c:
        policy = {"split": [{"target": 1, "weight": 1}, {"target": bad.version, "weight": 1}]}
        local_registry.deployments.set_policy(
            "m", policy, refs=["1", str(bad.version)], actor="another-process"
        )

        def held() -> dict[str, Any]:
            found: dict[str, Any] = {
                h["route"]: h for h in c.get("/v2/health/ready").json().get("held", [])
            }
            return found

        wait_for("the policy to be held", lambda: "policy" in held())
        reason = held()["policy"]["reason"]
        assert reason.startswith(f"version {bad.version} is not serving yet (") and "NaN" in reason
        assert reason.endswith("no policy applies")
        serving = c.get("/api/models/m/traffic").json()["serving"]
        assert serving["split"] is None and serving["held"] == reason
        load.wait_for_answers(30)

        good = {"split": [{"target": 1, "weight": 1}, {"target": 2, "weight": 1}]}
        local_registry.deployments.set_policy("m", good, refs=["1", "2"], actor="another")
        wait_for("version 2 to answer", lambda: load.answers[-1].version == "2")
        wait_for("the hold to clear", lambda: "policy" not in held())
        load.wait_for_answers(30)
    answers = load.answers
    assert all(a.status == 200 for a in answers), [a for a in answers if a.status != 200][:3]
    assert {a.version for a in answers} == {"1", "2"}


def test_the_failure_of_an_archived_version_is_forgotten(
    server: str, local_registry: Registry, tmp_path: Path
) -> None:
    bad = register_upload(local_registry, "m", write_nan_model(tmp_path / "nan.onnx"), actor="t")
    with httpx.Client(base_url=server, timeout=60) as c:
        refused = c.post("/api/models/m/promote", json={"version": bad.version})
        assert refused.status_code == 409
        (failure,) = c.get("/v2/health/ready").json()["failures"]
        assert failure["version"] == bad.version
        archived = c.post(f"/api/models/m/versions/{bad.version}/archive", json={})
        assert archived.status_code == 200
        assert "failures" not in c.get("/v2/health/ready").json()
        assert bad.version not in {r["version"] for r in c.get("/api/deployments").json()}
