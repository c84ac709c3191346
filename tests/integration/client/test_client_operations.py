"""Traffic policies, deployments, the V2 repository index and the audit log through the SDK."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from maas.client import Client, Deployment, DeploymentState, RepositoryEntry, Traffic
from maas.testing.models import write_linear_model

X = np.ones((1, 4), np.float32)


def test_traffic_split_sticky_and_shadow_then_clear(
    client: Client, linear: Path, linear_b: Path, tmp_path: Path
) -> None:
    client.upload("lin", linear)
    client.upload("lin", linear_b)
    client.upload("lin", write_linear_model(tmp_path / "c.onnx", seed=2))
    client.promote("lin", 1)
    none = client.get_traffic("lin")
    assert isinstance(none, Traffic)
    assert (none.model, none.policy, none.actor, none.updated_at) == ("lin", None, None, None)

    policy = {
        "split": [{"target": "production", "weight": 1}, {"target": 2, "weight": 1}],
        "sticky_header": "x-user",
        "shadow": {"target": 3, "fraction": 1.0},
    }
    stored = client.set_traffic("lin", policy)
    assert stored.policy is not None
    assert [s["target"] for s in stored.policy["split"]] == ["production", 2]
    assert stored.policy["sticky_header"] == "x-user"
    assert stored.policy["shadow"] == {"target": 3, "fraction": 1.0}
    assert stored.actor is not None and stored.actor.startswith("api:")
    assert stored.updated_at is not None and stored.serving is not None
    assert client.get_traffic("lin").policy == stored.policy

    for user in ("ann", "bob", "cy", "dee"):
        answered = {
            client.infer("lin", {"input": X}, headers={"x-user": user}).model_version
            for _ in range(4)
        }
        assert len(answered) == 1 and answered <= {"1", "2"}  # sticky: one version a user

    client.clear_traffic("lin")
    assert client.get_traffic("lin").policy is None
    assert client.infer("lin", {"input": X}).model_version == "1"


def test_deployments_unload_load_and_repository_index(client: Client, linear: Path) -> None:
    client.upload("lin", linear)
    client.promote("lin", 1)
    assert client.infer("lin", {"input": X}).model_version == "1"
    [row] = client.deployments("lin")
    assert isinstance(row, Deployment)
    assert (row.model, row.version, row.state) == ("lin", 1, "ready")
    assert "default" in row.routes and row.resident_bytes is not None
    assert client.deployments("other") == []
    assert [r.model for r in client.deployments()] == ["lin"]

    ready = client.repository_index(ready_only=True)
    assert ready == [RepositoryEntry("lin", "1", "READY", "")]

    unloaded = client.unload("lin")
    assert isinstance(unloaded, DeploymentState)
    assert (unloaded.model, unloaded.state) == ("lin", "unloaded")
    assert unloaded.actor.startswith("api:") and unloaded.updated_at is not None
    assert [(r.version, r.state) for r in client.deployments("lin")][-1] == (None, "unloaded")
    assert client.repository_index(ready_only=True) == []
    assert [(e.name, e.state) for e in client.repository_index()] == [("lin", "UNAVAILABLE")]

    loaded = client.load("lin")
    assert loaded.state == "loaded"
    assert client.repository_index(ready_only=True) == ready
    assert client.infer("lin", {"input": X}).model_version == "1"


def test_audit_filters_limit_and_pages(client: Client, linear: Path, linear_b: Path) -> None:
    client.upload("lin", linear)
    client.upload("other", linear_b)
    client.promote("lin", 1)
    client.set_alias("lin", "staging", 1)

    events = client.audit()
    assert [e.id for e in events] == sorted((e.id for e in events), reverse=True)  # newest first
    assert {e.model for e in events} == {"lin", "other"}
    only_lin = client.audit("lin")
    assert only_lin and {e.model for e in only_lin} == {"lin"}
    aliases = client.audit(action="alias")
    assert len(aliases) == 2 and all(e.action.startswith("alias.") for e in aliases)
    assert [e.version for e in aliases] == [1, 1]
    assert client.audit(limit=2) == events[:2]
    assert client.audit(before=events[1].id) == events[2:]
