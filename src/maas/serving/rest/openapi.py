"""The OpenAPI document at ``/openapi.json`` (and ``/docs``), true to what the server does.

FastAPI documents the routes it sees; this adds what it cannot: V2 inference (answered by
the inference lane before FastAPI, for speed), the schemas of bodies the control plane
validates itself (a version's serving config), and the real error answers, a
``{error, code, details}`` body with the statuses of ``rest/errors.py``, in place of
FastAPI's 422 (maas answers 400 for every invalid request).
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from maas.control.model_config import ModelConfig
from maas.control.traffic import TrafficPolicySpec
from maas.serving.rest.drift import ReferenceDocument
from maas.serving.rest.schemas import ErrorOut

__all__ = ["install_openapi"]

_REF = "#/components/schemas/{model}"
_ERROR_TEXT: Final = {
    "400": "Invalid input: the message names the field (code invalid_input, invalid_artifact)",
    "401": "No API key, or one that is wrong or revoked (code unauthenticated)",
    "403": "The key lacks the scope or the model, or a foreign Host or Origin (code forbidden)",
    "404": "No such model, version, alias, job or artifact (code not_found)",
    "409": "Conflicts with the current state: gate_failed, not_servable, conflict",
    "413": "The body is larger than MAAS_MAX_REQUEST_SIZE_BYTES (code payload_too_large)",
    "415": "The body's Content-Type is not JSON or application/octet-stream",
    "429": "The key is over its request rate (code rate_limited, with Retry-After)",
    "500": "The model failed (model_error) or the server did (internal)",
    "503": "Not available now: unavailable, queue_full (with Retry-After), worker_crashed",
    "504": "The request's timeout passed before it ran (code deadline_exceeded)",
}


class InferInputTensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str = Field(description="BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32, FP64, BYTES")
    parameters: dict[str, Any] | None = Field(
        None, description='{"binary_data_size": N} when the tensor follows in binary'
    )
    data: list[Any] | None = Field(None, description="Row-major values (nested lists allowed)")


class RequestedOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = Field(
        None, description='{"binary_data": true} for a binary answer'
    )


class InferRequest(BaseModel):
    """A KServe V2 inference request (JSON; or, with the binary tensor extension, this
    JSON followed by raw tensor bytes, its length in Inference-Header-Content-Length)."""

    id: str | None = None
    parameters: dict[str, Any] | None = Field(
        None, description='e.g. {"timeout": 2000000}: microseconds to wait in the queue'
    )
    inputs: list[InferInputTensor]
    outputs: list[RequestedOutput] | None = None


class InferOutputTensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = None


class InferResponse(BaseModel):
    model_name: str
    model_version: str = Field(description="The version that answered.")
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[InferOutputTensor]


_DOCUMENTED: Final[tuple[type[BaseModel], ...]] = (
    ErrorOut,
    ModelConfig,
    TrafficPolicySpec,
    ReferenceDocument,
    InferRequest,
    InferResponse,
)


def _infer_operation(with_version: bool) -> dict[str, Any]:
    parameters = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    if with_version:
        parameters.append(
            {
                "name": "version",
                "in": "path",
                "required": True,
                "description": "A version number or an alias.",
                "schema": {"type": "string"},
            }
        )
    parameters.append(
        {
            "name": "Inference-Header-Content-Length",
            "in": "header",
            "required": False,
            "description": "Binary tensor extension: the length of the JSON part of the body.",
            "schema": {"type": "integer"},
        }
    )
    return {
        "tags": ["inference (KServe V2)"],
        "summary": "Infer" + (" with one version" if with_version else " (default route)"),
        "description": "Without a version, the model's default route answers: production, "
        "else the newest version, spread by the model's traffic policy if it has one. The "
        "response's model_version says which version answered.",
        "operationId": "infer_version" if with_version else "infer",
        "parameters": parameters,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model="InferRequest")}},
                "application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"},
                },
            },
        },
        "responses": {
            "200": {
                "description": "The outputs",
                "content": {
                    "application/json": {"schema": {"$ref": _REF.format(model="InferResponse")}},
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                },
            }
        },
    }


def _errors_for(path: str, method: str) -> list[str]:
    if path.startswith("/v2/health"):  # open; a foreign Host is still refused
        return ["403", "503"] if path.endswith("ready") else ["403"]
    codes = ["400", "401", "403", "404", "429", "500", "503"]
    if method != "get":
        codes.append("415")
    if path.endswith("/infer"):
        codes += ["413", "504"]
    elif method != "get":
        codes.append("409")
        if path.endswith("/versions") and method == "post":
            codes.append("413")
    return sorted(codes)


def _document(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title, version=app.version, summary=app.summary, routes=app.routes
    )
    paths = schema.setdefault("paths", {})
    paths["/v2/models/{name}/infer"] = {"post": _infer_operation(False)}
    paths["/v2/models/{name}/versions/{version}/infer"] = {"post": _infer_operation(True)}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in _DOCUMENTED:
        document = model.model_json_schema(ref_template=_REF)
        components.update(document.pop("$defs", {}))
        components[model.__name__] = document
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    schema["components"]["securitySchemes"] = {
        "apiKey": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (maas keys create): required once the server has one, "
            "and always off loopback",
        }
    }
    error = {"$ref": _REF.format(model="ErrorOut")}
    for path, operations in paths.items():
        for method, operation in operations.items():
            if not path.startswith("/v2/health"):
                operation["security"] = [{"apiKey": []}]
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for code in _errors_for(path, method):
                responses.setdefault(
                    code,
                    {
                        "description": _ERROR_TEXT[code],
                        "content": {"application/json": {"schema": error}},
                    },
                )
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve ``_document(app)`` as the app's OpenAPI document (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
