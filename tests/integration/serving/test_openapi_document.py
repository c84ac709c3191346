"""``/openapi.json`` is complete, true to the server, and a valid document on its own."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

#: Every operation the server answers (the V2 infer routes are the inference lane's).
ROUTES = {
    ("get", "/v2"),
    ("get", "/v2/health/live"),
    ("get", "/v2/health/ready"),
    ("get", "/v2/models/stats"),
    ("get", "/v2/models/{name}"),
    ("get", "/v2/models/{name}/versions/{version}"),
    ("get", "/v2/models/{name}/ready"),
    ("get", "/v2/models/{name}/versions/{version}/ready"),
    ("get", "/v2/models/{name}/config"),
    ("get", "/v2/models/{name}/versions/{version}/config"),
    ("get", "/v2/models/{name}/stats"),
    ("get", "/v2/models/{name}/versions/{version}/stats"),
    ("post", "/v2/models/{name}/infer"),
    ("post", "/v2/models/{name}/versions/{version}/infer"),
    ("post", "/v2/repository/index"),
    ("post", "/v2/repository/models/{name}/load"),
    ("post", "/v2/repository/models/{name}/unload"),
    ("get", "/api/models"),
    ("get", "/api/models/{name}"),
    ("get", "/api/models/{name}/versions"),
    ("post", "/api/models/{name}/versions"),
    ("get", "/api/models/{name}/versions/{ref}"),
    ("post", "/api/models/{name}/versions/{ref}/archive"),
    ("get", "/api/models/{name}/versions/{ref}/artifacts/{artifact_format}"),
    ("get", "/api/models/{name}/versions/{ref}/config"),
    ("put", "/api/models/{name}/versions/{ref}/config"),
    ("get", "/api/models/{name}/versions/{ref}/reference"),
    ("put", "/api/models/{name}/versions/{ref}/reference"),
    ("get", "/api/models/{name}/drift"),
    ("post", "/api/models/{name}/versions/{ref}/evaluations"),
    ("get", "/api/models/{name}/gate"),
    ("put", "/api/models/{name}/gate"),
    ("get", "/api/models/{name}/aliases"),
    ("put", "/api/models/{name}/aliases/{alias}"),
    ("delete", "/api/models/{name}/aliases/{alias}"),
    ("get", "/api/models/{name}/aliases/{alias}/history"),
    ("post", "/api/models/{name}/promote"),
    ("post", "/api/models/{name}/rollback"),
    ("get", "/api/models/{name}/traffic"),
    ("put", "/api/models/{name}/traffic"),
    ("delete", "/api/models/{name}/traffic"),
    ("get", "/api/deployments"),
    ("post", "/api/models/{name}/load"),
    ("post", "/api/models/{name}/unload"),
    ("get", "/api/audit"),
    ("get", "/api/alerts"),
    ("get", "/metrics"),
    ("get", "/api/registry"),
    ("post", "/api/jobs"),
    ("get", "/api/jobs"),
    ("get", "/api/jobs/{job_id}"),
    ("get", "/api/jobs/{job_id}/metrics"),
    ("get", "/api/jobs/{job_id}/logs"),
    ("post", "/api/jobs/{job_id}/cancel"),
    ("post", "/api/jobs/{job_id}/resume"),
    ("post", "/api/keys"),
    ("get", "/api/keys"),
    ("delete", "/api/keys/{key_id}"),
}
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
_ERROR_REF = "#/components/schemas/ErrorOut"
#: Values for path parameters: a model that does not exist, so no call changes anything.
_SAMPLES = {
    "name": "ghost",
    "version": "1",
    "ref": "1",
    "alias": "staging",
    "artifact_format": "onnx",
    "job_id": "424242",
    "key_id": "000000000000",
}


@pytest.fixture
def document(client: httpx.Client) -> Iterator[dict[str, Any]]:
    reply = client.get("/openapi.json")
    assert reply.status_code == 200
    yield reply.json()


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in _METHODS:
                yield method, path, operation


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} points outside the document"
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def test_every_route_is_documented_infer_included(document: dict[str, Any]) -> None:
    documented = {(method, path) for method, path, _ in _operations(document)}
    assert documented == ROUTES, {
        "undocumented": sorted(ROUTES - documented),
        "unknown": sorted(documented - ROUTES),
    }
    for path in ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"):
        infer = document["paths"][path]["post"]
        body = infer["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/InferRequest"}
        answer = infer["responses"]["200"]["content"]["application/json"]["schema"]
        assert answer == {"$ref": "#/components/schemas/InferResponse"}
        assert {"400", "404", "413", "500", "503", "504"} <= set(infer["responses"])


def test_no_422_and_every_error_is_an_error_out(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["ErrorOut"]
    assert set(error["required"]) == {"error", "code"}
    assert set(error["properties"]) == {"error", "code", "details"}
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for method, path, operation in _operations(document):
        responses = operation["responses"]
        assert "422" not in responses, (method, path)
        for code in (code for code in responses if code[0] in "45"):
            schema = responses[code]["content"]["application/json"]["schema"]
            assert schema == {"$ref": _ERROR_REF}, (method, path, code)


def test_the_document_is_valid_on_its_own(document: dict[str, Any]) -> None:
    assert re.fullmatch(r"3\.\d+\.\d+", document["openapi"])
    assert document["info"]["title"] == "maas" and document["info"]["version"]
    refs = set(_refs(document))
    assert _ERROR_REF in refs
    for ref in refs:
        _resolve(document, ref)
    operation_ids = [op["operationId"] for _, _, op in _operations(document)]
    assert len(operation_ids) == len(set(operation_ids)), "operationIds must be unique"
    for method, path, operation in _operations(document):
        declared = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "path"} | {
            p["name"] for p in document["paths"][path].get("parameters", []) if p["in"] == "path"
        }
        assert declared == set(re.findall(r"{([^}]+)}", path)), (method, path)
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert parameter["required"] is True, (method, path, parameter["name"])
        for code, response in operation["responses"].items():
            assert re.fullmatch(r"[1-5]\d\d|default", code), (method, path, code)
            assert response.get("description"), (method, path, code)


def test_every_documented_operation_is_served_and_errors_have_that_shape(
    client: httpx.Client, document: dict[str, Any]
) -> None:
    """Each documented path answers with a status it documents (no phantom routes), and
    every error body is an ``ErrorOut``. The calls name a model that does not exist."""
    for method, path, operation in sorted(_operations(document)):
        url = re.sub(r"{([^}]+)}", lambda m: _SAMPLES[m[1]], path)
        reply = client.request(method.upper(), url, json={} if method != "get" else None)
        where = f"{method.upper()} {url} -> {reply.status_code} {reply.text[:200]}"
        assert reply.status_code != 405, where
        assert str(reply.status_code) in operation["responses"], where
        if reply.status_code >= 400:
            body = reply.json()
            assert set(body) <= {"error", "code", "details"}, where
            assert isinstance(body["error"], str) and isinstance(body["code"], str), where
            assert body["error"] != "Not Found", where  # maas answered, not a missing route
