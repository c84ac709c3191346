"""Promotion is safe: a version that cannot serve never takes traffic, under load.

Each bad version loads (or is registered) fine and fails only when the server loads it
and runs its warm-up request: a corrupted stored file, a model that raises, one that
answers NaN, one whose outputs contradict its registered signature. Promoting it is
refused with the reason; production keeps answering from the old version throughout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from maas.config import Settings
from maas.control.uploads import register_upload
from maas.registry import Registry
from maas.registry.entities import ModelVersion
from maas.testing.models import (
    corrupt_stored_artifact,
    linear_signature_config,
    write_linear_model,
    write_nan_model,
    write_raising_model,
)
from maas.testing.server import running_server
from tests.integration.serving.load import DefaultRouteLoad, linear_body, wait_for

BadVersion = Callable[[Registry, Path], ModelVersion]


def _corrupted(registry: Registry, tmp_path: Path) -> ModelVersion:
    version = register_upload(
        registry, "m", write_linear_model(tmp_path / "v2.onnx", seed=7), actor="test"
    )
    corrupt_stored_artifact(tmp_path / "artifacts", version.artifact_sha256)
    return version


def _raising(registry: Registry, tmp_path: Path) -> ModelVersion:
    return register_upload(registry, "m", write_raising_model(tmp_path / "v2.onnx"), actor="test")


def _nan(registry: Registry, tmp_path: Path) -> ModelVersion:
    return register_upload(registry, "m", write_nan_model(tmp_path / "v2.onnx"), actor="test")


def _outside_signature(registry: Registry, tmp_path: Path) -> ModelVersion:
    """Returns [-1, 5] while its config declares [-1, 3]."""
    path = write_linear_model(tmp_path / "v2.onnx", out_features=5)
    return register_upload(registry, "m", path, actor="test", config=linear_signature_config())


#: kind -> (how to register the bad version 2, words its refusal must say)
BAD_VERSIONS: dict[str, tuple[BadVersion, tuple[str, ...]]] = {
    "corrupted": (_corrupted, ("does not load", "corrupted")),
    "raises": (_raising, ("raised", "Gather")),
    "nan": (_nan, ("NaN",)),
    "outside-signature": (_outside_signature, ("shape [1, 5]", "[-1, 3]")),
}


@pytest.fixture
def good(tmp_path: Path, local_registry: Registry) -> ModelVersion:
    """Version 1 of ``m``, in production."""
    version = register_upload(
        local_registry, "m", write_linear_model(tmp_path / "v1.onnx"), actor="test"
    )
    local_registry.aliases.set("m", "production", version.version, actor="test")
    return version


@pytest.fixture
def server(settings: Settings, local_registry: Registry, good: ModelVersion) -> Iterator[str]:
    with running_server(settings, local_registry) as url:
        yield url


def _assert_refused_version(
    reply: httpx.Response, version: int, fragments: tuple[str, ...]
) -> None:
    """409 ``not_servable`` for ``version`` of ``m``, the reason saying ``fragments``."""
    assert reply.status_code == 409, reply.text
    body = reply.json()
    assert body["code"] == "not_servable"
    assert body["details"]["version"] == version and body["details"]["model"] == "m"
    for fragment in fragments:
        assert fragment in body["details"]["reason"], body
        assert fragment in body["error"], body


def _assert_refused(reply: httpx.Response, fragments: tuple[str, ...]) -> None:
    _assert_refused_version(reply, 2, fragments)


def _assert_only_version_1_answered(load: DefaultRouteLoad) -> None:
    answers = load.answers
    failed = [a for a in answers if a.status != 200]
    assert not failed, failed[:3]
    assert {a.version for a in answers} == {"1"}


@pytest.mark.parametrize("kind", sorted(BAD_VERSIONS))
def test_a_version_that_cannot_serve_is_never_promoted(
    kind: str, server: str, local_registry: Registry, tmp_path: Path
) -> None:
    register, fragments = BAD_VERSIONS[kind]
    bad = register(local_registry, tmp_path)
    assert bad.version == 2
    with DefaultRouteLoad(server, "m") as load, httpx.Client(base_url=server, timeout=60) as c:
        put = c.put("/api/models/m/aliases/production", json={"version": 2})
        _assert_refused(put, fragments)
        load.wait_for_answers(10)
        promote = c.post("/api/models/m/promote", json={"version": 2})
        _assert_refused(promote, fragments)
        load.wait_for_answers(10)

        assert c.get("/api/models/m").json()["aliases"] == {"production": 1}
        moves = c.get("/api/models/m/aliases/production/history").json()
        assert [m["version"] for m in moves] == [1]

        rows = {row["version"]: row for row in c.get("/api/deployments").json()}
        assert rows[1]["state"] == "ready" and "default" in rows[1]["routes"]
        assert rows[2]["state"] == "failed" and rows[2]["attempts"] >= 2
        assert all(f in rows[2]["reason"] for f in fragments), rows[2]

        health = c.get("/v2/health/ready")
        assert health.status_code == 200 and health.json()["ready"] is True
        (failure,) = health.json()["failures"]
        assert (failure["model"], failure["version"]) == ("m", 2)
        assert all(f in failure["reason"] for f in fragments), failure

        ready = c.get("/v2/models/m/versions/2/ready")
        assert ready.status_code == 503, ready.text
        assert ready.json()["ready"] is False
        assert all(f in ready.json()["reason"] for f in fragments), ready.json()
        assert c.get("/v2/models/m/ready").status_code == 200
        assert c.get("/v2/models/m/versions/1/ready").status_code == 200

        direct = c.post("/v2/models/m/versions/2/infer", json=linear_body())
        assert direct.status_code == 503 and direct.json()["code"] == "unavailable"
        load.wait_for_answers(10)
    _assert_only_version_1_answered(load)


def test_a_failed_promotion_can_be_forced_past_the_gate_but_never_past_the_warm_up(
    server: str, local_registry: Registry, tmp_path: Path
) -> None:
    """``force`` is for the validation gate only: a version that cannot answer stays out."""
    _raising(local_registry, tmp_path)
    with httpx.Client(base_url=server, timeout=60) as c:
        forced = c.put(
            "/api/models/m/aliases/production",
            json={"version": 2, "force": True, "reason": "ship it"},
        )
        _assert_refused(forced, ("raised",))
        staging = c.put("/api/models/m/aliases/staging", json={"version": 2})
        _assert_refused(staging, ("raised",))  # every alias, not only production
        assert c.get("/api/models/m").json()["aliases"] == {"production": 1}


def _serving_time_error(c: httpx.Client, ref: str) -> dict[str, Any]:
    reply = c.post(f"/v2/models/m/versions/{ref}/infer", json=linear_body(2))
    assert reply.status_code == 500, reply.text
    body: dict[str, Any] = reply.json()
    assert body["code"] == "model_error"
    return body


def test_without_a_warm_up_model_failures_are_model_errors_at_serving_time(
    server: str, local_registry: Registry, tmp_path: Path
) -> None:
    """A version whose warm-up is switched off loads untested; then each batch is checked:
    an exception or outputs outside the signature are a 500 ``model_error``, never data."""
    no_warmup = {"warmup": {"enabled": False}}
    register_upload(
        local_registry, "m", write_raising_model(tmp_path / "r.onnx"), actor="t", config=no_warmup
    )
    wide = write_linear_model(tmp_path / "w.onnx", out_features=5)
    register_upload(
        local_registry, "m", wide, actor="t", config={**linear_signature_config(), **no_warmup}
    )
    with httpx.Client(base_url=server, timeout=60) as c:
        raised = _serving_time_error(c, "2")
        assert raised["error"].startswith("the model failed: ") and "Gather" in raised["error"]
        outside = _serving_time_error(c, "3")
        assert "returned shape [2, 5]" in outside["error"] and "[-1, 3]" in outside["error"]
        assert outside["details"]["output"] == "logits"
        ok = c.post("/v2/models/m/infer", json=linear_body(2))
        assert ok.status_code == 200 and ok.json()["model_version"] == "1"


def test_an_alias_moved_in_the_database_to_a_failing_version_is_held(
    server: str, local_registry: Registry, tmp_path: Path
) -> None:
    """Another process moves production straight in the registry (no warm-up on its side):
    this server keeps routing to the old version and says why; a good version then takes
    over as soon as the server has followed the registry."""
    _raising(local_registry, tmp_path)
    good = write_linear_model(tmp_path / "v3.onnx", seed=3)
    assert register_upload(local_registry, "m", good, actor="test").version == 3
    with DefaultRouteLoad(server, "m") as load, httpx.Client(base_url=server, timeout=60) as c:
        local_registry.aliases.set("m", "production", 2, actor="another-process")

        def held() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = c.get("/v2/health/ready").json().get("held", [])
            return found

        wait_for("the routes of m to be held", lambda: len(held()) == 2)
        routes = {h["route"]: h for h in held()}
        assert set(routes) == {"default", "production"}
        for hold in routes.values():
            assert hold["model"] == "m"
            assert hold["reason"].startswith("version 2 is not serving yet (")
            assert "raised" in hold["reason"] and hold["reason"].endswith("; 1 answers")
        load.wait_for_answers(20)
        assert {a.version for a in load.answers} == {"1"}
        rows = {row["version"]: row for row in c.get("/api/deployments").json()}
        assert rows[1]["state"] == "ready"
        assert sorted(rows[1]["routes"]) == ["default", "production"]
        assert rows[2]["state"] == "failed" and rows[2]["routes"] == []
        assert c.get("/api/models/m").json()["aliases"] == {"production": 2}  # the stored wish
        assert c.get("/v2/models/m/ready").status_code == 200  # what answers is ready

        local_registry.aliases.set("m", "production", 3, actor="another-process")
        wait_for("version 3 to answer", lambda: load.answers[-1].version == "3")
        switched = load.answers[-1].answered_s
        load.wait_for_answers(20)
        assert "held" not in c.get("/v2/health/ready").json()
    answers = load.answers
    assert all(a.status == 200 for a in answers), [a for a in answers if a.status != 200][:3]
    assert {a.version for a in answers} == {"1", "3"}
    assert all(a.version == "3" for a in answers if a.sent_s > switched)


def test_a_rollback_to_a_version_that_can_no_longer_serve_is_refused(
    server: str, local_registry: Registry, tmp_path: Path, good: ModelVersion
) -> None:
    path = write_linear_model(tmp_path / "v2.onnx", seed=2)
    assert register_upload(local_registry, "m", path, actor="test").version == 2
    with httpx.Client(base_url=server, timeout=60) as c:
        assert c.post("/api/models/m/promote", json={"version": 2}).status_code == 200
        corrupt_stored_artifact(tmp_path / "artifacts", good.artifact_sha256)
        with DefaultRouteLoad(server, "m") as load:
            refused = c.post("/api/models/m/rollback", json={})
            assert refused.status_code == 409 and refused.json()["code"] == "not_servable"
            assert refused.json()["details"]["version"] == 1
            assert "corrupted" in refused.json()["details"]["reason"]
            load.wait_for_answers(20)
        assert c.get("/api/models/m").json()["aliases"] == {"production": 2}
    assert all(a.status == 200 and a.version == "2" for a in load.answers)


@pytest.mark.parametrize("kind", ["corrupted", "nan"])
def test_a_traffic_policy_naming_a_version_that_cannot_serve_is_refused(
    kind: str, server: str, local_registry: Registry, tmp_path: Path
) -> None:
    register, fragments = BAD_VERSIONS[kind]
    register(local_registry, tmp_path)
    policies = [
        {"split": [{"target": 1, "weight": 9}, {"target": 2, "weight": 1}]},
        {"shadow": {"target": 2}},
    ]
    with DefaultRouteLoad(server, "m") as load, httpx.Client(base_url=server, timeout=60) as c:
        for policy in policies:
            _assert_refused(c.put("/api/models/m/traffic", json=policy), fragments)
        assert c.get("/api/models/m/traffic").json()["policy"] is None
        load.wait_for_answers(20)
    _assert_only_version_1_answered(load)


def test_loading_a_model_whose_default_version_cannot_serve_is_refused(
    settings: Settings, local_registry: Registry, tmp_path: Path
) -> None:
    """The repository extension's load answers once the default version is warm, so a
    model whose default is broken is refused (409 over REST, FAILED_PRECONDITION over
    gRPC) and stays unloaded."""
    _nan(local_registry, tmp_path)  # version 1, the default (no production alias)
    local_registry.deployments.set_state("m", "unloaded", actor="test")
    with running_server(settings, local_registry) as url, httpx.Client(base_url=url) as c:
        refused = c.post("/v2/repository/models/m/load")
        _assert_refused_version(refused, 1, ("NaN",))
        refused = c.post("/api/models/m/load")
        _assert_refused_version(refused, 1, ("NaN",))
        rows = c.get("/api/deployments", params={"model": "m"}).json()
        assert {(r["version"], r["state"]) for r in rows} >= {(None, "unloaded")}


def test_a_config_under_which_the_version_cannot_serve_is_refused(
    server: str, settings: Settings, local_registry: Registry
) -> None:
    """A config change rebuilds the version; one under which it cannot answer its warm-up
    is refused (it would take production down on the next server start) and nothing is
    recorded."""
    broken = linear_signature_config(out_features=5)  # the model answers [-1, 3]
    with DefaultRouteLoad(server, "m") as load, httpx.Client(base_url=server, timeout=60) as c:
        refused = c.put("/api/models/m/versions/1/config", json=broken)
        _assert_refused_version(refused, 1, ("shape [1, 3]", "[-1, 5]"))
        assert c.get("/api/models/m/versions/1/config").json()["revision"] == 0
        ok = c.put("/api/models/m/versions/1/config", json={"batching": {"max_batch_size": 8}})
        assert ok.status_code == 200 and ok.json()["revision"] == 1
        load.wait_for_answers(20)
    _assert_only_version_1_answered(load)
    with running_server(settings, local_registry) as url:  # a server starting afresh
        reply = httpx.post(f"{url}/v2/models/m/infer", json=linear_body())
        assert reply.status_code == 200 and reply.json()["model_version"] == "1"
