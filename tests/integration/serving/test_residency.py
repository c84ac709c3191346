"""A memory bound over a real server: versions no route wants are evicted least recently
used first, pinned versions (production, a traffic policy's targets) stay loaded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from maas.config import Settings
from maas.control.uploads import register_upload
from maas.registry import Registry
from maas.testing.models import write_linear_model
from maas.testing.server import running_server
from tests.integration.serving.load import linear_body


@pytest.fixture
def sizes(local_registry: Registry, tmp_path: Path) -> list[int]:
    """``m`` versions 1 to 5 (same shape, other weights), production on 1; their sizes."""
    found = []
    for seed in range(1, 6):
        path = write_linear_model(tmp_path / f"v{seed}.onnx", seed=seed)
        found.append(register_upload(local_registry, "m", path, actor="test").size_bytes)
    local_registry.aliases.set("m", "production", 1, actor="test")
    return found


def _bounded(settings: Settings, sizes: list[int], kind: str) -> Settings:
    """Room for three versions, counted in versions or in bytes (one instance each)."""
    if kind == "versions":
        return settings.model_copy(update={"max_loaded_versions": 3})
    assert len(set(sizes)) == 1, sizes  # same graph, same size: the bytes bound is exact
    return settings.model_copy(update={"max_loaded_bytes": 3 * sizes[0] + sizes[0] // 2})


@pytest.fixture(params=["versions", "bytes"])
def client(
    request: pytest.FixtureRequest, settings: Settings, local_registry: Registry, sizes: list[int]
) -> Iterator[httpx.Client]:
    bounded = _bounded(settings, sizes, request.param)
    with running_server(bounded, local_registry) as url, httpx.Client(base_url=url) as c:
        yield c


def _ask(client: httpx.Client, version: int) -> None:
    reply = client.post(f"/v2/models/m/versions/{version}/infer", json=linear_body())
    assert reply.status_code == 200, reply.text
    assert reply.json()["model_version"] == str(version)


def _deployments(client: httpx.Client) -> dict[int, dict[str, Any]]:
    return {row["version"]: row for row in client.get("/api/deployments").json()}


def _ready(client: httpx.Client) -> list[int]:
    return sorted(v for v, row in _deployments(client).items() if row["state"] == "ready")


def test_unpinned_versions_are_evicted_least_recently_used_first(client: httpx.Client) -> None:
    policy = {"split": [{"target": "production", "weight": 9}, {"target": 2, "weight": 1}]}
    assert client.put("/api/models/m/traffic", json=policy).status_code == 200
    rows = _deployments(client)
    assert _ready(client) == [1, 2]
    assert rows[1]["pinned"] and rows[2]["pinned"]
    assert "production" in rows[1]["routes"] and rows[2]["routes"] == ["split"]

    _ask(client, 3)  # lazily loaded: fits the bound
    assert _ready(client) == [1, 2, 3]
    assert not _deployments(client)[3]["pinned"]
    _ask(client, 4)  # one too many: 3, the least recently used unpinned, goes
    assert _ready(client) == [1, 2, 4]
    _ask(client, 3)  # loaded again on request; now 4 is the least recently used
    assert _ready(client) == [1, 2, 3]
    _ask(client, 5)
    assert _ready(client) == [1, 2, 5]

    for _ in range(5):  # pinned versions answer throughout and were never let go
        reply = client.post("/v2/models/m/infer", json=linear_body())
        assert reply.status_code == 200 and reply.json()["model_version"] in {"1", "2"}
    _ask(client, 1)
    _ask(client, 2)
    rows = _deployments(client)
    assert rows[1]["state"] == rows[2]["state"] == "ready"

    # Once the policy is gone, 2 is an unpinned version like any other.
    assert client.delete("/api/models/m/traffic").status_code == 204
    assert _ready(client) == [1, 5]  # a version no route wants any more is let go
    _ask(client, 3)
    _ask(client, 4)
    assert _ready(client) == [1, 3, 4]
    _ask(client, 5)
    assert _ready(client) == [1, 4, 5]


def test_pinned_versions_stay_over_the_bound_and_others_still_answer(
    settings: Settings, local_registry: Registry, sizes: list[int]
) -> None:
    """Pinned versions alone over the bound stay loaded (their traffic would fail
    otherwise); a version asked for by name is loaded, answers, and is let go again."""
    bounded = settings.model_copy(update={"max_loaded_versions": 1})
    with running_server(bounded, local_registry) as url, httpx.Client(base_url=url) as c:
        policy = {"split": [{"target": "production", "weight": 1}, {"target": 2, "weight": 1}]}
        assert c.put("/api/models/m/traffic", json=policy).status_code == 200
        for _ in range(3):
            _ask(c, 3)
            assert _ready(c) == [1, 2]
        served = set()
        for _ in range(4):
            reply = c.post("/v2/models/m/infer", json=linear_body())
            assert reply.status_code == 200
            served.add(reply.json()["model_version"])
        assert served == {"1", "2"}
