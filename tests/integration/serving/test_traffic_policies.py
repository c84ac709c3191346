"""Traffic policies over a real server: canary split, sticky routing (REST header and
gRPC metadata), shadow comparison, bypass by naming a version, and the policy's rules."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as grpcclient

from maas.config import Settings
from maas.control.uploads import register_upload
from maas.registry import Registry
from maas.testing.models import write_linear_model, write_raising_model, write_shadow_pair
from maas.testing.server import Endpoints, serving_endpoints
from tests.integration.serving.load import linear_body, wait_for


@pytest.fixture
def endpoints(settings: Settings, local_registry: Registry) -> Iterator[Endpoints]:
    with serving_endpoints(settings, local_registry) as found:
        yield found


@pytest.fixture
def client(endpoints: Endpoints) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=endpoints.http_url, timeout=60) as c:
        yield c


@pytest.fixture
def three(local_registry: Registry, tmp_path: Path) -> None:
    """``m`` versions 1, 2 and 3 (different weights), production on 1."""
    for seed in (1, 2, 3):
        path = write_linear_model(tmp_path / f"v{seed}.onnx", seed=seed)
        register_upload(local_registry, "m", path, actor="test")
    local_registry.aliases.set("m", "production", 1, actor="test")


def _set_policy(client: httpx.Client, policy: dict[str, Any]) -> dict[str, Any]:
    reply = client.put("/api/models/m/traffic", json=policy)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def _served(client: httpx.Client, path: str = "/v2/models/m/infer", **kwargs: Any) -> str:
    reply = client.post(path, json=linear_body(), **kwargs)
    assert reply.status_code == 200, reply.text
    version: str = reply.json()["model_version"]
    return version


def test_a_90_10_canary_over_2000_requests(client: httpx.Client, three: None) -> None:
    body = _set_policy(
        client,
        {"split": [{"target": "production", "weight": 90}, {"target": 2, "weight": 10}]},
    )
    assert body["policy"]["split"][0] == {"target": "production", "weight": 90.0}
    assert [s["version"] for s in body["serving"]["split"]] == [1, 2]

    counts = Counter(_served(client) for _ in range(2000))
    print("90/10 canary over 2000 requests:", dict(counts))
    assert set(counts) == {"1", "2"}
    assert abs(counts["1"] / 2000 - 0.90) <= 0.03
    assert abs(counts["2"] / 2000 - 0.10) <= 0.03
    serving = client.get("/api/models/m/traffic").json()["serving"]
    seen = {str(s["version"]): s["requests"] for s in serving["split"]}
    assert seen == dict(counts)  # the server counted what the callers saw

    # Requests naming a version or an alias bypass the policy, and are not counted in it.
    assert {_served(client, "/v2/models/m/versions/2/infer") for _ in range(20)} == {"2"}
    path = "/v2/models/m/versions/production/infer"
    assert {_served(client, path) for _ in range(20)} == {"1"}
    assert {_served(client, "/v2/models/m/versions/3/infer") for _ in range(5)} == {"3"}
    serving = client.get("/api/models/m/traffic").json()["serving"]
    assert {str(s["version"]): s["requests"] for s in serving["split"]} == dict(counts)

    assert client.delete("/api/models/m/traffic").status_code == 204
    assert {_served(client) for _ in range(20)} == {"1"}
    assert client.get("/api/models/m/traffic").json()["policy"] is None


def test_a_90_10_canary_under_concurrent_load_stays_within_its_weights(
    endpoints: Endpoints, client: httpx.Client, three: None
) -> None:
    # 8 callers at once: the split switches versions between batches, not per request,
    # and every request still counts, so 2,000 land within a batch of 90/10.
    _set_policy(
        client, {"split": [{"target": "production", "weight": 90}, {"target": 2, "weight": 10}]}
    )

    def caller(_: int) -> Counter[str]:
        seen: Counter[str] = Counter()
        with httpx.Client(base_url=endpoints.http_url, timeout=60) as own:
            for _ in range(250):
                seen[_served(own)] += 1
        return seen

    with ThreadPoolExecutor(8) as pool:
        counts = sum(pool.map(caller, range(8)), Counter())
    print("90/10 canary, 8 callers, 2000 requests:", dict(counts))
    assert counts["1"] + counts["2"] == 2000
    assert abs(counts["2"] / 2000 - 0.10) <= 0.03
    serving = client.get("/api/models/m/traffic").json()["serving"]
    assert {str(s["version"]): s["requests"] for s in serving["split"]} == dict(counts)


def _grpc_version(triton: Any, user: str) -> str:
    tensor = grpcclient.InferInput("input", [1, 4], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 4), np.float32))
    result = triton.infer("m", [tensor], headers={"x-user-id": user})
    version: str = result.get_response().model_version
    return version


def test_the_same_sticky_value_always_gets_the_same_version(
    client: httpx.Client, endpoints: Endpoints, three: None
) -> None:
    _set_policy(
        client,
        {
            "split": [{"target": 1, "weight": 1}, {"target": 2, "weight": 1}],
            "sticky_header": "X-User-Id",
        },
    )
    users = [f"user-{i}" for i in range(40)]
    by_rest = {}
    for user in users:
        seen = {_served(client, headers={"X-User-Id": user}) for _ in range(5)}
        assert len(seen) == 1, (user, seen)
        by_rest[user] = seen.pop()
    assert set(by_rest.values()) == {"1", "2"}  # both sides of the split are in use

    triton = grpcclient.InferenceServerClient(endpoints.grpc_address)
    try:
        for user in users:
            seen = {_grpc_version(triton, user) for _ in range(3)}
            assert seen == {by_rest[user]}, user  # gRPC metadata sticks the same way
        tensor = grpcclient.InferInput("input", [1, 4], "FP32")
        tensor.set_data_from_numpy(np.zeros((1, 4), np.float32))
        for user in users[:10]:  # naming a version bypasses the policy, sticky or not
            named = triton.infer("m", [tensor], model_version="3", headers={"x-user-id": user})
            assert named.get_response().model_version == "3"
    finally:
        triton.close()

    # Without the header a request is spread by the weights: alternately, 1 then 2.
    assert [_served(client) for _ in range(6)] == ["1", "2"] * 3


def test_a_shadow_reports_how_often_it_agrees_and_callers_see_only_the_primary(
    client: httpx.Client, local_registry: Registry, tmp_path: Path
) -> None:
    primary, candidate = write_shadow_pair(tmp_path)
    register_upload(local_registry, "m", primary, actor="test")
    register_upload(local_registry, "m", candidate, actor="test")
    local_registry.aliases.set("m", "production", 1, actor="test")
    rng = np.random.default_rng(5)
    x = rng.random((40, 4)).astype(np.float32)
    x[:, 0] += 1.0  # the primary's label is 0 on every row
    x[:, 3] = 0.0
    x[::4, 3] = 5.0  # every fourth row: the candidate's logit 2 wins, its label is 2
    expected = ort.InferenceSession(str(primary)).run(None, {"input": x})[0]
    shadow = ort.InferenceSession(str(candidate)).run(None, {"input": x})[0]
    agreement = float(np.mean(expected.argmax(1) == shadow.argmax(1)))
    assert agreement == 0.75

    _set_policy(client, {"shadow": {"target": 2, "fraction": 1}})
    for row, want in zip(x, expected, strict=True):
        body = {
            "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": row.tolist()}]
        }
        reply = client.post("/v2/models/m/infer", json=body)
        assert reply.status_code == 200, reply.text
        assert reply.json()["model_version"] == "1"
        got = np.asarray(reply.json()["outputs"][0]["data"], np.float32)
        np.testing.assert_array_equal(got, want)

    def report() -> dict[str, Any]:
        found: dict[str, Any] = client.get("/api/models/m/traffic").json()["serving"]["shadow"]
        return found

    wait_for("40 compared rows", lambda: report()["compared"] == 40)
    found = report()
    assert found["version"] == 2 and found["offered"] == 40 and found["mirrored"] == 40
    assert found["errors"] == 0 and found["dropped"] == 0
    assert found["agreement"] == agreement and found["agreed"] == 30
    diff = np.abs(expected.astype(np.float64) - shadow.astype(np.float64)).max()
    assert found["max_abs_diff"]["logits"] == float(diff)
    assert found["primary_latency"]["mean_ms"] > 0 and found["shadow_latency"]["mean_ms"] > 0
    stats = client.get("/v2/models/m/versions/2/stats").json()["model_stats"][0]
    assert stats["version"] == "2"


@pytest.mark.parametrize(("fraction", "requests"), [(0.1, 100), (0.3, 50), (0.7, 30)])
def test_a_shadow_copies_exactly_its_fraction_of_requests(
    client: httpx.Client, three: None, fraction: float, requests: int
) -> None:
    _set_policy(client, {"shadow": {"target": 2, "fraction": fraction}})
    for _ in range(requests):
        assert _served(client) == "1"
    copies = round(fraction * requests)

    def report() -> dict[str, Any]:
        found: dict[str, Any] = client.get("/api/models/m/traffic").json()["serving"]["shadow"]
        return found

    wait_for(f"{copies} compared rows", lambda: report()["compared"] >= copies)
    found = report()
    assert found["offered"] == requests and found["fraction"] == fraction
    assert found["mirrored"] == found["compared"] == copies, found


@pytest.mark.parametrize(
    ("policy", "field", "fragment"),
    [
        ({"split": [{"target": 1, "weight": -1}]}, "split.0.weight", "greater than 0"),
        ({"split": [{"target": 1, "weight": 1, "share": 2}]}, "split.0.share", "not permitted"),
        ({"split": [{"target": "No Such!", "weight": 1}]}, "split.0.target", "version"),
        ({"split": [{"target": 0, "weight": 1}]}, "split.0.target", "version"),
        ({"split": [{"target": True, "weight": 1}]}, "split.0.target", "version"),
        ({"shadow": {"target": 2, "fraction": 2}}, "shadow.fraction", "less than or equal"),
        ({"split": [{"target": 1, "weight": 1}], "sticky_header": "a b"}, "sticky_header", ""),
        ({"spilt": [{"target": 1, "weight": 1}]}, "spilt", "not permitted"),
        ({}, "policy", "give a split, a shadow, or both"),
        (
            {"split": [{"target": 1, "weight": 1}], "sticky_header": "x-user"},
            "sticky_header",
            "needs a split over two or more targets",
        ),
        (
            {"split": [{"target": 1, "weight": 1}, {"target": 1, "weight": 2}]},
            "split",
            "each target may appear once",
        ),
        (
            {"split": [{"target": 1, "weight": 1}], "shadow": {"target": 1}},
            "shadow",
            "must not also take live traffic",
        ),
    ],
)
def test_invalid_policies_are_400_naming_the_field_and_change_nothing(
    client: httpx.Client,
    three: None,
    policy: dict[str, Any],
    field: str,
    fragment: str,
) -> None:
    reply = client.put("/api/models/m/traffic", json=policy)
    assert reply.status_code == 400, reply.text
    body = reply.json()
    assert body["code"] == "invalid_input"
    assert body["details"]["field"] == field, body
    assert fragment in body["error"], body
    assert client.get("/api/models/m/traffic").json()["policy"] is None


def test_a_policy_naming_what_does_not_exist_is_refused(client: httpx.Client, three: None) -> None:
    for raw in (b"[]", b"{", b""):
        reply = client.put("/api/models/m/traffic", content=raw)
        assert reply.status_code == 400 and reply.json()["code"] == "invalid_input", raw
    for target, status in ((9, 404), ("nightly", 404)):
        reply = client.put(
            "/api/models/m/traffic",
            json={"split": [{"target": 1, "weight": 1}, {"target": target, "weight": 1}]},
        )
        assert reply.status_code == status, reply.text
        assert reply.json()["code"] == "not_found"
    ghost = client.put("/api/models/ghost/traffic", json={"split": [{"target": 1, "weight": 1}]})
    assert ghost.status_code == 404
    assert client.get("/api/models/m/traffic").json()["policy"] is None


def test_what_a_policy_names_cannot_be_archived_or_deleted(
    client: httpx.Client, three: None
) -> None:
    assert client.put("/api/models/m/aliases/canary", json={"version": 3}).status_code == 200
    _set_policy(
        client,
        {
            "split": [{"target": "production", "weight": 9}, {"target": "canary", "weight": 1}],
            "shadow": {"target": 2},
        },
    )
    for alias in ("canary", "production"):
        refused = client.delete(f"/api/models/m/aliases/{alias}")
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "conflict" and "traffic policy" in refused.json()["error"]
    archived = client.post("/api/models/m/versions/2/archive", json={"reason": "old"})
    assert archived.status_code == 409, archived.text
    assert "traffic policy" in archived.json()["error"]
    assert client.get("/api/models/m").json()["aliases"] == {"canary": 3, "production": 1}
    assert client.get("/api/models/m").json()["versions"] == [1, 2, 3]

    assert client.delete("/api/models/m/traffic").status_code == 204
    assert client.delete("/api/models/m/aliases/canary").status_code == 204
    assert client.post("/api/models/m/versions/3/archive", json={}).status_code == 200
    assert client.post("/api/models/m/versions/2/archive", json={}).status_code == 200
    assert client.get("/api/models/m").json()["versions"] == [1]


def test_model_version_names_the_version_whose_answer_it_is(
    client: httpx.Client, three: None, tmp_path: Path
) -> None:
    _set_policy(client, {"split": [{"target": 1, "weight": 1}, {"target": 3, "weight": 1}]})
    x = np.random.default_rng(9).standard_normal((1, 4)).astype(np.float32)
    expected = {
        str(seed): ort.InferenceSession(str(tmp_path / f"v{seed}.onnx")).run(None, {"input": x})[0]
        for seed in (1, 3)
    }
    body = {
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": x[0].tolist()}]
    }
    seen = set()
    for _ in range(10):
        reply = client.post("/v2/models/m/infer", json=body).json()
        got = np.asarray(reply["outputs"][0]["data"], np.float32).reshape(1, 3)
        np.testing.assert_array_equal(got, expected[reply["model_version"]])
        seen.add(reply["model_version"])
    assert seen == {"1", "3"}


def test_a_split_on_an_alias_follows_the_alias(client: httpx.Client, three: None) -> None:
    _set_policy(
        client, {"split": [{"target": "production", "weight": 1}, {"target": 3, "weight": 1}]}
    )
    assert sorted(_served(client) for _ in range(4)) == ["1", "1", "3", "3"]
    assert client.post("/api/models/m/promote", json={"version": 2}).status_code == 200
    assert sorted(_served(client) for _ in range(4)) == ["2", "2", "3", "3"]
    serving = client.get("/api/models/m/traffic").json()["serving"]
    assert [s["version"] for s in serving["split"]] == [2, 3]


def test_a_shadow_that_fails_is_counted_and_never_seen_by_callers(
    client: httpx.Client, local_registry: Registry, tmp_path: Path
) -> None:
    register_upload(local_registry, "m", write_linear_model(tmp_path / "a.onnx"), actor="t")
    local_registry.aliases.set("m", "production", 1, actor="test")
    register_upload(  # loads without a warm-up, then raises on every request
        local_registry,
        "m",
        write_raising_model(tmp_path / "r.onnx"),
        actor="t",
        config={"warmup": {"enabled": False}},
    )
    _set_policy(client, {"shadow": {"target": 2}})
    for _ in range(20):
        assert _served(client) == "1"

    def report() -> dict[str, Any]:
        found: dict[str, Any] = client.get("/api/models/m/traffic").json()["serving"]["shadow"]
        return found

    wait_for("20 failed copies", lambda: report()["errors"] == 20)
    found = report()
    assert found["compared"] == 0 and found["agreement"] is None
    assert "Gather" in found["last_error"]
