"""What a web page, a stranger on the network and a busy key cannot do to a real server:
DNS rebinding, cross-site forms and bodiless posts, serving other machines without keys;
and what the audit log and rate limits make of who acts."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from maas.config import Settings
from maas.control.access import ApiKeys
from maas.control.uploads import register_upload
from maas.errors import UnavailableError
from maas.registry import Registry
from maas.serving.app import build_app
from maas.testing.models import write_linear_model
from maas.testing.server import Endpoints, serving_endpoints

EVIL = "http://evil.example"


def _infer_body() -> bytes:
    return json.dumps(
        {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
    ).encode()


@pytest.fixture
def open_server(
    settings: Settings, local_registry: Registry, tmp_path: Path
) -> Iterator[Endpoints]:
    """A loopback server without keys: open, as the quickstart runs."""
    register_upload(local_registry, "linear", write_linear_model(tmp_path / "l.onnx"), actor="t")
    with serving_endpoints(settings, local_registry) as endpoints:
        yield endpoints


def _versions(registry: Registry, name: str) -> int:
    try:
        return len(registry.list_versions(name))
    except Exception:
        return 0


# -- browsers --------------------------------------------------------------------------


def test_a_rebound_host_name_is_refused_on_every_route(open_server: Endpoints) -> None:
    with httpx.Client(base_url=open_server.http_url, headers={"Host": "evil.example"}) as c:
        for method, path in (("GET", "/api/models"), ("GET", "/v2/models/linear")):
            response = c.request(method, path)
            assert response.status_code == 403
            assert response.json()["details"] == {"header": "Host"}
        infer = c.post("/v2/models/linear/infer", content=_infer_body())
        assert infer.status_code == 403
    with httpx.Client(base_url=open_server.http_url) as c:  # its own names still answer
        port = open_server.http_url.rsplit(":", 1)[1]
        assert c.get("/api/models", headers={"Host": f"localhost:{port}"}).status_code == 200
        assert c.post("/v2/models/linear/infer", content=_infer_body()).status_code == 200


def test_a_cross_site_form_cannot_register_a_version(
    open_server: Endpoints, local_registry: Registry, tmp_path: Path
) -> None:
    model = write_linear_model(tmp_path / "form.onnx").read_bytes()
    url = "/api/models/planted/versions"
    with httpx.Client(base_url=open_server.http_url) as c:
        # what the issue reproduced: form-encoded, foreign Host and Origin
        foreign = c.post(
            url,
            content=model,
            headers={
                "Host": "evil.example",
                "Origin": EVIL,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        assert foreign.status_code == 403
        # after DNS rebinding the Host is right, but the Origin is the attacker's page
        rebound = c.post(url, content=model, headers={"Origin": EVIL})
        assert rebound.status_code == 403
        assert rebound.json()["details"] == {"header": "Origin"}
        for simple in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data"):
            typed = c.post(url, content=model, headers={"Content-Type": simple})
            assert typed.status_code == 415, simple
            assert typed.json()["code"] == "unsupported_media_type"
    assert _versions(local_registry, "planted") == 0


def test_bodiless_posts_from_another_origin_are_refused(open_server: Endpoints) -> None:
    with httpx.Client(base_url=open_server.http_url) as c:
        for path in ("/api/jobs/1/cancel", "/api/jobs/1/resume", "/api/models/linear/unload"):
            assert c.post(path, headers={"Origin": EVIL}).status_code == 403, path
            assert c.post(path, headers={"Origin": "null"}).status_code == 403, path
        # the server's own pages (same origin) may
        same = c.post("/api/models/linear/unload", headers={"Origin": open_server.http_url})
        assert same.status_code == 200


def test_the_content_type_of_an_inference_body_is_checked(open_server: Endpoints) -> None:
    url = "/v2/models/linear/infer"
    with httpx.Client(base_url=open_server.http_url) as c:
        for refused in ("application/x-python-pickle", "text/plain", "multipart/form-data; b=x"):
            answer = c.post(url, content=_infer_body(), headers={"Content-Type": refused})
            assert answer.status_code == 415, refused
        for accepted in ("application/json", "application/json; charset=utf-8"):
            answer = c.post(url, content=_infer_body(), headers={"Content-Type": accepted})
            assert answer.status_code == 200, accepted
        bare = c.post(url, content=_infer_body())  # tritonclient sends no Content-Type
        assert bare.status_code == 200


# -- who may start where ----------------------------------------------------------------


def test_a_server_on_every_interface_refuses_to_start_without_keys(
    settings: Settings, local_registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    exposed = settings.model_copy(update={"host": "0.0.0.0", "job_concurrency": 0})
    with pytest.raises(UnavailableError, match="without API keys"):
        build_app(exposed, local_registry)
    with caplog.at_level(logging.WARNING, logger="maas.serving.access"):
        build_app(exposed.model_copy(update={"auth": "off"}), local_registry)
    assert "MAAS_AUTH=off" in caplog.text
    ApiKeys(local_registry.keys).create("ops", ["admin"], actor="test")
    build_app(exposed, local_registry)  # with a key it starts, and requires keys


def test_keys_are_required_once_the_first_exists_and_revocation_is_immediate(
    open_server: Endpoints, local_registry: Registry
) -> None:
    with httpx.Client(base_url=open_server.http_url, timeout=30) as c:
        assert c.get("/api/models").status_code == 200  # no keys yet: open
        created = c.post("/api/keys", json={"name": "ops", "scopes": ["admin"]})
        assert created.status_code == 201
        token = created.json()["token"]
        assert c.get("/api/models").status_code == 401
        admin = {"Authorization": f"Bearer {token}"}
        listed = c.get("/api/keys", headers=admin).json()
        assert [k["name"] for k in listed] == ["ops"]
        assert token not in json.dumps(listed) and "scrypt" not in json.dumps(listed)
        other = c.post("/api/keys", json={"name": "ci", "scopes": ["read"]}, headers=admin)
        ci = {"Authorization": f"Bearer {other.json()['token']}"}
        assert c.get("/api/models", headers=ci).status_code == 200
        revoked = c.delete(f"/api/keys/{other.json()['id']}", headers=admin)
        assert revoked.status_code == 200 and revoked.json()["revoked_by"].startswith("key:ops/")
        assert c.get("/api/models", headers=ci).status_code == 401
        assert c.get("/v2/health/live").status_code == 200  # health stays open


# -- the audit log and rate limits -----------------------------------------------------


@pytest.fixture
def guarded(
    settings: Settings, local_registry: Registry, tmp_path: Path
) -> Iterator[tuple[Endpoints, dict[str, str]]]:
    register_upload(local_registry, "linear", write_linear_model(tmp_path / "l.onnx"), actor="t")
    book = ApiKeys(local_registry.keys)
    tokens = {
        "admin": book.create("ops", ["admin"], actor="test").token,
        "deploy": book.create("deployer", ["deploy"], actor="test").token,
        "slow": book.create("slow", ["predict"], rate_per_s=2, actor="test").token,
    }
    with serving_endpoints(settings, local_registry) as endpoints:
        yield endpoints, tokens


def test_the_audit_log_names_the_key_of_each_change_and_records_refusals(
    guarded: tuple[Endpoints, dict[str, str]], local_registry: Registry
) -> None:
    endpoints, tokens = guarded
    deploy = {"Authorization": f"Bearer {tokens['deploy']}"}
    with httpx.Client(base_url=endpoints.http_url, timeout=30) as c:
        moved = c.put("/api/models/linear/aliases/staging", json={"version": 1}, headers=deploy)
        assert moved.status_code == 200, moved.text
        refused = c.put("/api/models/linear/aliases/production", json={"version": 1})
        assert refused.status_code == 401
    moves = local_registry.audit_log("linear", action="alias")
    assert moves[0].actor.startswith("key:deployer/")
    refusals = local_registry.audit_log("", action="access.refused")
    assert refusals[0].details["target"] == "/api/models/linear/aliases/production"
    assert refusals[0].details["code"] == "unauthenticated"
    assert refusals[0].actor == "api:127.0.0.1"


def test_a_flood_of_refused_attempts_writes_a_bounded_number_of_records(
    guarded: tuple[Endpoints, dict[str, str]], local_registry: Registry
) -> None:
    endpoints, _ = guarded
    started = time.monotonic()
    with httpx.Client(base_url=endpoints.http_url, timeout=30) as c:
        for _ in range(200):
            assert c.post("/api/models/linear/unload").status_code == 401
    elapsed = time.monotonic() - started
    recorded = len(local_registry.audit_log("", action="access.refused", limit=1000))
    assert recorded <= 20 + 5 * elapsed + 1  # the burst, then 5 a second
    assert recorded >= 20


def _refusals_bound(statuses: list[int], elapsed_s: float, rate: float, burst: float) -> None:
    """A bucket of ``burst`` refilled at ``rate``: the first ``burst`` pass; of the rest,
    at most ``rate * elapsed_s`` (+1 for the partial token) do (whatever the machine's
    speed, so the bound holds under load too)."""
    assert statuses[: int(burst)] == [200] * int(burst), statuses
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(429) >= len(statuses) - burst - rate * elapsed_s - 1, (
        statuses,
        elapsed_s,
    )


def test_a_key_over_its_rate_gets_429_and_resource_exhausted(
    guarded: tuple[Endpoints, dict[str, str]],
) -> None:
    endpoints, tokens = guarded
    slow = {"Authorization": f"Bearer {tokens['slow']}"}
    with httpx.Client(base_url=endpoints.http_url, timeout=30) as c:
        started = time.monotonic()
        answers = [
            c.post("/v2/models/linear/infer", content=_infer_body(), headers=slow)
            for _ in range(10)
        ]
        elapsed = time.monotonic() - started
    _refusals_bound([a.status_code for a in answers], elapsed, rate=2, burst=2)
    for limited in (a for a in answers if a.status_code == 429):
        assert limited.json()["code"] == "rate_limited"
        assert int(limited.headers["Retry-After"]) >= 1
    client = grpcclient.InferenceServerClient(endpoints.grpc_address)
    try:
        tensor = grpcclient.InferInput("input", [1, 4], "FP32")
        tensor.set_data_from_numpy(np.ones((1, 4), dtype=np.float32))
        codes = []
        started = time.monotonic()
        for _ in range(10):
            try:
                client.infer("linear", [tensor], headers={"authorization": slow["Authorization"]})
                codes.append("OK")
            except InferenceServerException as exc:
                codes.append(str(exc.status()))
        elapsed = time.monotonic() - started
    finally:
        client.close()
    assert set(codes) <= {"OK", "StatusCode.RESOURCE_EXHAUSTED"}, codes
    assert codes.count("StatusCode.RESOURCE_EXHAUSTED") >= 10 - 2 * elapsed - 2 - 1, codes


def test_a_version_over_its_request_rate_answers_429(
    settings: Settings, local_registry: Registry, tmp_path: Path
) -> None:
    limited = {"batching": {"max_requests_per_s": 2}}
    register_upload(
        local_registry, "capped", write_linear_model(tmp_path / "c.onnx"), actor="t", config=limited
    )
    with (
        serving_endpoints(settings, local_registry) as endpoints,
        httpx.Client(base_url=endpoints.http_url, timeout=30) as c,
    ):
        started = time.monotonic()
        answers = [c.post("/v2/models/capped/infer", content=_infer_body()) for _ in range(10)]
        elapsed = time.monotonic() - started
    _refusals_bound([a.status_code for a in answers], elapsed, rate=2, burst=2)
    for refused in (a for a in answers if a.status_code == 429):
        assert refused.json()["code"] == "rate_limited" and "Retry-After" in refused.headers
