"""Every REST route and every gRPC method refuses a missing key, a wrong key and a key
without the scope it declares; the table below is the specification, and the server's
own route table (and the gRPC service descriptor) must match it exactly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import grpc  # type: ignore[import-untyped]  # grpcio ships no type stubs
import httpx
import pytest
from fastapi import FastAPI
from tritonclient.grpc import service_pb2

from maas.config import Settings
from maas.control.access import ApiKeys, Reach
from maas.control.uploads import register_upload
from maas.registry import Registry
from maas.serving.app import build_app
from maas.serving.grpc.servicer import REQUIREMENTS
from maas.serving.rest.access import api_routes
from maas.store import LocalStore
from maas.testing.models import write_linear_model
from maas.testing.server import Endpoints, serving_endpoints

OPEN: Final = frozenset[str]()
CLIENT: Final = frozenset({"predict", "read"})
READ: Final = frozenset({"read"})
DEPLOY: Final = frozenset({"deploy"})
TRAIN: Final = frozenset({"train"})
ADMIN: Final = frozenset({"admin"})

#: (method, path) -> any one of these scopes (empty: open), and the models it reaches.
REST: Final[dict[tuple[str, str], tuple[frozenset[str], Reach]]] = {
    ("GET", "/v2/health/live"): (OPEN, Reach.NONE),
    ("GET", "/v2/health/ready"): (OPEN, Reach.NONE),
    ("GET", "/v2"): (CLIENT, Reach.NONE),
    ("GET", "/v2/models/stats"): (CLIENT, Reach.EVERY),
    ("GET", "/v2/models/{name}"): (CLIENT, Reach.NAMED),
    ("GET", "/v2/models/{name}/versions/{version}"): (CLIENT, Reach.NAMED),
    ("GET", "/v2/models/{name}/ready"): (CLIENT, Reach.NAMED),
    ("GET", "/v2/models/{name}/versions/{version}/ready"): (CLIENT, Reach.NAMED),
    ("GET", "/v2/models/{name}/config"): (CLIENT, Reach.NAMED),
    ("GET", "/v2/models/{name}/versions/{version}/config"): (CLIENT, Reach.NAMED),
    ("GET", "/v2/models/{name}/stats"): (CLIENT, Reach.NAMED),
    ("GET", "/v2/models/{name}/versions/{version}/stats"): (CLIENT, Reach.NAMED),
    ("POST", "/v2/models/{name}/infer"): (frozenset({"predict"}), Reach.NAMED),
    ("POST", "/v2/models/{name}/versions/{version}/infer"): (frozenset({"predict"}), Reach.NAMED),
    ("GET", "/api/models"): (READ, Reach.EVERY),
    ("GET", "/api/models/{name}"): (READ, Reach.NAMED),
    ("GET", "/api/models/{name}/versions"): (READ, Reach.NAMED),
    ("GET", "/api/models/{name}/versions/{ref}"): (READ, Reach.NAMED),
    ("POST", "/api/models/{name}/versions"): (DEPLOY, Reach.NAMED),
    ("POST", "/api/models/{name}/versions/{ref}/archive"): (DEPLOY, Reach.NAMED),
    ("GET", "/api/models/{name}/versions/{ref}/artifacts/{artifact_format}"): (
        DEPLOY,
        Reach.NAMED,
    ),
    ("GET", "/api/models/{name}/versions/{ref}/config"): (READ, Reach.NAMED),
    ("PUT", "/api/models/{name}/versions/{ref}/config"): (DEPLOY, Reach.NAMED),
    ("GET", "/api/models/{name}/versions/{ref}/reference"): (READ, Reach.NAMED),
    ("PUT", "/api/models/{name}/versions/{ref}/reference"): (DEPLOY, Reach.NAMED),
    ("GET", "/api/models/{name}/drift"): (READ, Reach.NAMED),
    ("POST", "/api/models/{name}/versions/{ref}/evaluations"): (DEPLOY, Reach.NAMED),
    ("GET", "/api/models/{name}/gate"): (READ, Reach.NAMED),
    ("PUT", "/api/models/{name}/gate"): (DEPLOY, Reach.NAMED),
    ("GET", "/api/models/{name}/aliases"): (READ, Reach.NAMED),
    ("PUT", "/api/models/{name}/aliases/{alias}"): (DEPLOY, Reach.NAMED),
    ("DELETE", "/api/models/{name}/aliases/{alias}"): (DEPLOY, Reach.NAMED),
    ("GET", "/api/models/{name}/aliases/{alias}/history"): (READ, Reach.NAMED),
    ("POST", "/api/models/{name}/promote"): (DEPLOY, Reach.NAMED),
    ("POST", "/api/models/{name}/rollback"): (DEPLOY, Reach.NAMED),
    ("GET", "/api/models/{name}/traffic"): (READ, Reach.NAMED),
    ("PUT", "/api/models/{name}/traffic"): (DEPLOY, Reach.NAMED),
    ("DELETE", "/api/models/{name}/traffic"): (DEPLOY, Reach.NAMED),
    ("GET", "/api/deployments"): (READ, Reach.EVERY),
    ("POST", "/api/models/{name}/load"): (DEPLOY, Reach.NAMED),
    ("POST", "/api/models/{name}/unload"): (DEPLOY, Reach.NAMED),
    ("POST", "/v2/repository/index"): (READ, Reach.EVERY),
    ("POST", "/v2/repository/models/{name}/load"): (DEPLOY, Reach.NAMED),
    ("POST", "/v2/repository/models/{name}/unload"): (DEPLOY, Reach.NAMED),
    ("GET", "/api/audit"): (READ, Reach.EVERY),
    ("GET", "/api/alerts"): (READ, Reach.EVERY),
    ("GET", "/api/registry"): (CLIENT, Reach.NONE),
    ("POST", "/api/jobs"): (TRAIN, Reach.EVERY),
    ("GET", "/api/jobs"): (READ, Reach.EVERY),
    ("GET", "/api/jobs/{job_id}"): (READ, Reach.EVERY),
    ("GET", "/api/jobs/{job_id}/metrics"): (READ, Reach.EVERY),
    ("GET", "/api/jobs/{job_id}/logs"): (READ, Reach.EVERY),
    ("POST", "/api/jobs/{job_id}/cancel"): (TRAIN, Reach.EVERY),
    ("POST", "/api/jobs/{job_id}/resume"): (TRAIN, Reach.EVERY),
    ("POST", "/api/keys"): (ADMIN, Reach.EVERY),
    ("GET", "/api/keys"): (ADMIN, Reach.EVERY),
    ("DELETE", "/api/keys/{key_id}"): (ADMIN, Reach.EVERY),
    ("GET", "/metrics"): (READ, Reach.EVERY),
}

GRPC: Final[dict[str, tuple[frozenset[str], Reach]]] = {
    "ServerLive": (OPEN, Reach.NONE),
    "ServerReady": (OPEN, Reach.NONE),
    "ServerMetadata": (CLIENT, Reach.NONE),
    "ModelReady": (CLIENT, Reach.NAMED),
    "ModelMetadata": (CLIENT, Reach.NAMED),
    "ModelConfig": (CLIENT, Reach.NAMED),
    "ModelStatistics": (CLIENT, Reach.NAMED),
    "ModelInfer": (frozenset({"predict"}), Reach.NAMED),
    "ModelStreamInfer": (frozenset({"predict"}), Reach.NAMED),
    "RepositoryIndex": (READ, Reach.EVERY),
    "RepositoryModelLoad": (DEPLOY, Reach.NAMED),
    "RepositoryModelUnload": (DEPLOY, Reach.NAMED),
}

#: What each scope grants (admin: all), to pick a key that lacks a route's scope.
GRANTS: Final = {
    "read": {"read"},
    "predict": {"predict"},
    "train": {"train", "read"},
    "deploy": {"deploy", "read"},
    "admin": {"admin", "deploy", "train", "predict", "read"},
}
PARAMS: Final = {
    "name": "linear",
    "version": "1",
    "ref": "1",
    "alias": "staging",
    "artifact_format": "onnx",
    "job_id": "1",
    "key_id": "000000000000",
}
WRONG_TOKENS: Final = (
    "maas_000000000000_" + "A" * 43,  # a well-formed key nobody made
    "not-a-maas-key",
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Endpoints, dict[str, str]]]:
    """One server for the module (its answers do not depend on each other), with a key per
    scope, one limited to another model, and one whose secret is altered."""
    home = tmp_path_factory.mktemp("access")
    registry = Registry(f"sqlite:///{home}/maas.db", LocalStore(home / "artifacts"))
    registry.upgrade()
    register_upload(registry, "linear", write_linear_model(home / "l.onnx"), actor="t")
    book = ApiKeys(registry.keys)
    tokens = {scope: book.create(scope, [scope], actor="test").token for scope in GRANTS}
    tokens["elsewhere"] = book.create("elsewhere", ["admin"], models=["other"], actor="t").token
    real = tokens["read"]
    tokens["altered"] = real[:-1] + ("B" if real[-1] != "B" else "C")
    settings = Settings(home=home, job_concurrency=0, refresh_interval_s=0.1)
    try:
        with serving_endpoints(settings, registry) as endpoints:
            yield endpoints, tokens
    finally:
        registry.close()


@pytest.fixture
def endpoints(served: tuple[Endpoints, dict[str, str]]) -> Endpoints:
    return served[0]


@pytest.fixture
def keys(served: tuple[Endpoints, dict[str, str]]) -> dict[str, str]:
    return served[1]


def _lacking(scopes: frozenset[str]) -> str | None:
    """A single-scope key granting none of ``scopes`` (None: every scope grants one)."""
    return next((s for s in GRANTS if s != "admin" and not GRANTS[s] & scopes), None)


def _call(client: httpx.Client, method: str, path: str, token: str | None) -> httpx.Response:
    url = path.format(**PARAMS)
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    if method in ("GET", "DELETE"):
        return client.request(method, url, headers=headers)
    if path.endswith("/versions") and method == "POST":
        headers["Content-Type"] = "application/octet-stream"
        return client.request(method, url, headers=headers, content=b"not a model")
    return client.request(method, url, headers=headers, json={})


def test_the_route_table_is_the_one_this_test_specifies(tmp_path: Path) -> None:
    lane = build_app(Settings(home=tmp_path, job_concurrency=0))
    app = lane._app._app  # type: ignore[attr-defined]  # InferenceLane -> BrowserDefences -> FastAPI
    assert isinstance(app, FastAPI)
    declared = {
        (method, path): (frozenset(need.scopes), need.reach)
        for method, path, need in api_routes(app)
        if need is not None
    }
    infer = {key: value for key, value in REST.items() if key[1].endswith("/infer")}
    assert declared | infer == REST
    grpc_declared = {
        method: (frozenset(need.scopes), need.reach) for method, need in REQUIREMENTS.items()
    }
    assert grpc_declared == GRPC


def test_an_app_with_an_undeclared_route_is_not_built() -> None:
    from maas.serving.rest.access import require_declared

    app = FastAPI()

    @app.get("/forgotten")
    async def forgotten() -> None: ...

    with pytest.raises(RuntimeError, match="GET /forgotten"):
        require_declared(app)


@pytest.mark.parametrize(("method", "path"), sorted(REST))
def test_every_rest_route_refuses_who_it_should(
    endpoints: Endpoints, keys: dict[str, str], method: str, path: str
) -> None:
    scopes, reach = REST[(method, path)]
    with httpx.Client(base_url=endpoints.http_url, timeout=30) as client:
        if not scopes:
            assert _call(client, method, path, None).status_code not in (401, 403)
            return
        missing = _call(client, method, path, None)
        assert missing.status_code == 401, missing.text
        assert missing.json()["code"] == "unauthenticated"
        for wrong in (*WRONG_TOKENS, keys["altered"]):
            assert _call(client, method, path, wrong).status_code == 401
        lacking = _lacking(scopes)
        if lacking is not None:
            refused = _call(client, method, path, keys[lacking])
            assert refused.status_code == 403, refused.text
            assert refused.json()["code"] == "forbidden"
        if reach is not Reach.NONE:  # a key limited to another model
            assert _call(client, method, path, keys["elsewhere"]).status_code == 403
        holder = next(s for s in ("read", "predict", "train", "deploy", "admin") if s in scopes)
        allowed = _call(client, method, path, keys[holder])
        assert allowed.status_code not in (401, 403), allowed.text


def _grpc_request(method: str) -> Any:
    descriptor = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    message = descriptor.methods_by_name[method].input_type
    request = getattr(service_pb2, message.name)()
    for field in ("name", "model_name"):
        if field in message.fields_by_name:
            setattr(request, field, "linear")
    return request


def _grpc_call(channel: Any, method: str, token: str | None) -> grpc.StatusCode:
    descriptor = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    spec = descriptor.methods_by_name[method]
    output = getattr(service_pb2, spec.output_type.name)
    path = f"/{descriptor.full_name}/{method}"
    metadata = () if token is None else (("authorization", f"Bearer {token}"),)
    request = _grpc_request(method)
    try:
        if spec.client_streaming:
            call = channel.stream_stream(
                path,
                request_serializer=type(request).SerializeToString,
                response_deserializer=output.FromString,
            )
            list(call(iter([request]), metadata=metadata, timeout=30))
        else:
            call = channel.unary_unary(
                path,
                request_serializer=type(request).SerializeToString,
                response_deserializer=output.FromString,
            )
            call(request, metadata=metadata, timeout=30)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_every_grpc_method_refuses_who_it_should(
    endpoints: Endpoints, keys: dict[str, str]
) -> None:
    descriptor = service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    denied = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
    with grpc.insecure_channel(endpoints.grpc_address) as channel:
        for method in (m.name for m in descriptor.methods):
            if method not in GRPC:  # not offered: unimplemented, key or not
                assert _grpc_call(channel, method, None) == grpc.StatusCode.UNIMPLEMENTED
                continue
            scopes, reach = GRPC[method]
            if not scopes:
                assert _grpc_call(channel, method, None) not in denied, method
                continue
            assert _grpc_call(channel, method, None) == grpc.StatusCode.UNAUTHENTICATED, method
            for wrong in (*WRONG_TOKENS, keys["altered"]):
                assert _grpc_call(channel, method, wrong) == grpc.StatusCode.UNAUTHENTICATED
            lacking = _lacking(scopes)
            if lacking is not None:
                assert _grpc_call(channel, method, keys[lacking]) == (
                    grpc.StatusCode.PERMISSION_DENIED
                ), method
            if reach is not Reach.NONE and not GRPC_STREAMS.get(method):
                assert _grpc_call(channel, method, keys["elsewhere"]) == (
                    grpc.StatusCode.PERMISSION_DENIED
                ), method
            holder = next(s for s in ("read", "predict", "deploy") if s in scopes)
            assert _grpc_call(channel, method, keys[holder]) not in denied, method


#: Streams answer a per-request refusal in the stream (the stream itself stays open).
GRPC_STREAMS: Final = {"ModelStreamInfer": True}
