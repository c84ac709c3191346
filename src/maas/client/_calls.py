"""Every API call of the SDK, described once (path, query, body, how to read the answer).

``Client`` and ``AsyncClient`` run these; each function here returns a ``Call`` or, for
operations of several round trips, a ``Plan`` (see ``_plan``). Path segments are
percent-encoded, so a name can never change which route is asked.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import quote

import httpx
import numpy as np
import orjson

from maas.errors import InvalidInputError, NotFoundError, RegistryMismatchError

from ._inference import HEADER_LENGTH, decode_response, encode_request
from ._plan import Call, FileSink, NotAnAnswer, Plan, QueryValue, document
from ._types import (
    Alerts,
    Alias,
    AliasMove,
    ApiKey,
    AuditEvent,
    CreatedKey,
    Deployment,
    DeploymentState,
    Drift,
    InferResult,
    InputReference,
    Job,
    JobLogLine,
    Model,
    RegistryInfo,
    RepositoryEntry,
    ServingConfig,
    Traffic,
    Version,
)

T = TypeVar("T")
Ref = int | str

#: The alias the default route serves when it is set (else the newest version).
DEFAULT_ALIAS: Final = "production"
_SUFFIXES: Final = {"onnx": ".onnx", "torchscript": ".pt"}


def _segment(value: object) -> str:
    return quote(str(value), safe="")


def _model(name: str) -> str:
    return f"/api/models/{_segment(name)}"


def _version(name: str, ref: Ref) -> str:
    return f"{_model(name)}/versions/{_segment(ref)}"


def _v2_model(name: str, ref: Ref | None) -> str:
    path = f"/v2/models/{_segment(name)}"
    return path if ref is None else f"{path}/versions/{_segment(ref)}"


def _one(read: Callable[[dict[str, Any]], T]) -> Callable[[httpx.Response], T]:
    return lambda response: read(document(response))


def _many(read: Callable[[dict[str, Any]], T]) -> Callable[[httpx.Response], list[T]]:
    return lambda response: [read(item) for item in document(response)]


def _nothing(response: httpx.Response) -> None:
    return None


def _get(path: str, parse: Callable[[httpx.Response], T], **params: QueryValue | None) -> Call[T]:
    query = {k: v for k, v in params.items() if v is not None}
    return Call("GET", path, parse, params=query)


# -- the registry ------------------------------------------------------------------------


def registry() -> Call[RegistryInfo]:
    return _get("/api/registry", _one(RegistryInfo.from_json))


def check_registry(base_url: str, expected: str) -> Call[None]:
    """``RegistryMismatchError`` unless the server serves the registry ``expected``."""

    def parse(response: httpx.Response) -> None:
        served = RegistryInfo.from_json(document(response)).id
        if served != expected:
            raise RegistryMismatchError(
                f"the server at {base_url} serves registry {served}, "
                f"not this configuration's {expected}",
                {"server": base_url, "served": served, "expected": expected},
            )

    return _get("/api/registry", parse)


# -- models and versions -----------------------------------------------------------------


def list_models() -> Call[list[Model]]:
    return _get("/api/models", _many(Model.from_json))


def get_model(name: str) -> Call[Model]:
    return _get(_model(name), _one(Model.from_json))


def list_versions(name: str, include_archived: bool) -> Call[list[Version]]:
    return _get(f"{_model(name)}/versions", _many(Version.from_json), archived=include_archived)


def default_ref(model: Model) -> int:
    """The version the default route serves: production if set, else the newest."""
    if DEFAULT_ALIAS in model.aliases:
        return model.aliases[DEFAULT_ALIAS]
    if not model.versions:
        raise NotFoundError(
            f"model {model.name!r} has no version in service", {"model": model.name}
        )
    return max(model.versions)


def get_version(name: str, ref: Ref | None) -> Plan[Version]:
    if ref is None:
        model: Model = yield get_model(name)
        ref = default_ref(model)
    found: Version = yield _get(_version(name, ref), _one(Version.from_json))
    return found


def upload(
    name: str,
    artifact: Path | bytes,
    artifact_format: str,
    config: dict[str, Any] | None,
    description: str,
    idempotency_key: str | None = None,
) -> Call[Version]:
    """The upload, with an ``Idempotency-Key`` (a uuid4 unless given): sending this call
    again after a lost reply gives back the version the first send made, not a second."""
    if isinstance(artifact, str | os.PathLike):  # a str cannot be the bytes: it is a path
        data = Path(artifact).read_bytes()
    else:
        data = bytes(artifact)
    headers = {
        "Content-Type": "application/octet-stream",
        "Idempotency-Key": idempotency_key or str(uuid.uuid4()),
    }
    if config is not None:
        headers["X-Maas-Config"] = json.dumps(config)  # ASCII: a valid header value
    params: dict[str, QueryValue] = {"format": artifact_format}
    if description:
        params["description"] = description
    path = f"{_model(name)}/versions"
    return Call("POST", path, _one(Version.from_json), params=params, content=data, headers=headers)


def archive(name: str, ref: Ref, reason: str) -> Call[Version]:
    return Call(
        "POST", f"{_version(name, ref)}/archive", _one(Version.from_json), json={"reason": reason}
    )


def artifact_filename(version: Version, artifact_format: str) -> str:
    """``NAME-VERSION.onnx``, ``.pt`` for TorchScript, ``.FORMAT`` otherwise."""
    suffix = _SUFFIXES.get(artifact_format, f".{artifact_format}")
    return f"{version.model}-{version.version}{suffix}"


def download(
    name: str, ref: Ref | None, destination: Path, artifact_format: str | None
) -> Plan[Path]:
    """Resolve the version first (the number fixes what is fetched even if an alias moves
    meanwhile, and gives the sha256 the bytes are checked against), then stream."""
    version: Version = yield from get_version(name, ref)
    chosen = artifact_format or version.format
    target = destination
    if destination.is_dir():
        target = destination / artifact_filename(version, chosen)
    stored = version.artifacts.get(chosen)
    sink = FileSink(
        target,
        sha256=stored.sha256 if stored else None,
        size_bytes=stored.size_bytes if stored else None,
    )
    path = f"{_version(name, version.version)}/artifacts/{_segment(chosen)}"
    saved: Path = yield Call("GET", path, lambda _: target, sink=sink)
    return saved


def get_config(name: str, ref: Ref) -> Call[ServingConfig]:
    return _get(f"{_version(name, ref)}/config", _one(ServingConfig.from_json))


def set_config(name: str, ref: Ref, config: dict[str, Any]) -> Call[ServingConfig]:
    return Call("PUT", f"{_version(name, ref)}/config", _one(ServingConfig.from_json), json=config)


def _rules(response: httpx.Response) -> list[dict[str, Any]]:
    return list(document(response)["rules"])


def get_gate(name: str) -> Call[list[dict[str, Any]]]:
    return _get(f"{_model(name)}/gate", _rules)


def set_gate(name: str, rules: list[dict[str, Any]]) -> Call[list[dict[str, Any]]]:
    return Call("PUT", f"{_model(name)}/gate", _rules, json={"rules": rules})


def record_evaluation(name: str, ref: Ref, details: dict[str, Any]) -> Call[AuditEvent]:
    path = f"{_version(name, ref)}/evaluations"
    return Call("POST", path, _one(AuditEvent.from_json), json=details)


def get_reference(name: str, ref: Ref) -> Call[InputReference]:
    return _get(f"{_version(name, ref)}/reference", _one(InputReference.from_json))


def set_reference(name: str, ref: Ref, reference: dict[str, Any]) -> Call[InputReference]:
    path = f"{_version(name, ref)}/reference"
    return Call("PUT", path, _one(InputReference.from_json), json=reference)


def drift(name: str) -> Call[Drift]:
    return _get(f"{_model(name)}/drift", _one(Drift.from_json))


# -- aliases and promotion ---------------------------------------------------------------


def list_aliases(name: str) -> Call[list[Alias]]:
    return _get(f"{_model(name)}/aliases", _many(Alias.from_json))


def set_alias(name: str, alias: str, ref: Ref, force: bool, reason: str) -> Call[Alias]:
    body = {"version": ref, "force": force, "reason": reason}
    path = f"{_model(name)}/aliases/{_segment(alias)}"
    return Call("PUT", path, _one(Alias.from_json), json=body)


def delete_alias(name: str, alias: str) -> Call[None]:
    return Call("DELETE", f"{_model(name)}/aliases/{_segment(alias)}", _nothing)


def alias_history(name: str, alias: str) -> Call[list[AliasMove]]:
    return _get(f"{_model(name)}/aliases/{_segment(alias)}/history", _many(AliasMove.from_json))


def promote(name: str, ref: Ref, alias: str, force: bool, reason: str) -> Call[Alias]:
    body = {"version": ref, "alias": alias, "force": force, "reason": reason}
    return Call("POST", f"{_model(name)}/promote", _one(Alias.from_json), json=body)


def rollback(name: str, alias: str) -> Call[Alias]:
    return Call("POST", f"{_model(name)}/rollback", _one(Alias.from_json), json={"alias": alias})


# -- traffic and deployments -------------------------------------------------------------


def get_traffic(name: str) -> Call[Traffic]:
    return _get(f"{_model(name)}/traffic", _one(Traffic.from_json))


def set_traffic(name: str, policy: dict[str, Any]) -> Call[Traffic]:
    return Call("PUT", f"{_model(name)}/traffic", _one(Traffic.from_json), json=policy)


def clear_traffic(name: str) -> Call[None]:
    return Call("DELETE", f"{_model(name)}/traffic", _nothing)


def deployments(model: str | None) -> Call[list[Deployment]]:
    return _get("/api/deployments", _many(Deployment.from_json), model=model)


def load(name: str) -> Call[DeploymentState]:
    return Call("POST", f"{_model(name)}/load", _one(DeploymentState.from_json))


def unload(name: str) -> Call[DeploymentState]:
    return Call("POST", f"{_model(name)}/unload", _one(DeploymentState.from_json))


def repository_index(ready_only: bool) -> Call[list[RepositoryEntry]]:
    parse = _many(RepositoryEntry.from_json)
    return Call("POST", "/v2/repository/index", parse, json={"ready": ready_only})


def audit(
    model: str | None, action: str | None, limit: int, before: int | None
) -> Call[list[AuditEvent]]:
    parse = _many(AuditEvent.from_json)
    return _get("/api/audit", parse, model=model, action=action, limit=limit, before=before)


def alerts() -> Call[Alerts]:
    return _get("/api/alerts", _one(Alerts.from_json))


# -- jobs --------------------------------------------------------------------------------


def submit_job(spec: dict[str, Any]) -> Call[Job]:
    return Call("POST", "/api/jobs", _one(Job.from_json), json=spec)


def get_job(job_id: int) -> Call[Job]:
    return _get(f"/api/jobs/{_segment(job_id)}", _one(Job.from_json))


def list_jobs(state: str | None, limit: int) -> Call[list[Job]]:
    return _get("/api/jobs", _many(Job.from_json), state=state, limit=limit)


def job_epochs(job_id: int) -> Call[list[dict[str, Any]]]:
    return _get(f"/api/jobs/{_segment(job_id)}/metrics", lambda r: list(document(r)["epochs"]))


def job_logs(job_id: int, after: int, limit: int) -> Call[list[JobLogLine]]:
    def parse(response: httpx.Response) -> list[JobLogLine]:
        return [JobLogLine.from_json(line) for line in document(response)["lines"]]

    return _get(f"/api/jobs/{_segment(job_id)}/logs", parse, after=after, limit=limit)


def cancel_job(job_id: int) -> Call[Job]:
    return Call("POST", f"/api/jobs/{_segment(job_id)}/cancel", _one(Job.from_json))


def resume_job(job_id: int) -> Call[Job]:
    return Call("POST", f"/api/jobs/{_segment(job_id)}/resume", _one(Job.from_json))


# -- API keys ----------------------------------------------------------------------------


def create_key(
    name: str, scopes: Sequence[str], models: Sequence[str] | None, rate_per_s: float | None
) -> Call[CreatedKey]:
    if isinstance(scopes, str) or isinstance(models, str):
        raise InvalidInputError("scopes and models: sequences of names, not one string")
    body = {
        "name": name,
        "scopes": list(scopes),
        "models": None if models is None else list(models),
        "rate_per_s": rate_per_s,
    }
    return Call("POST", "/api/keys", _one(CreatedKey.from_json), json=body)


def list_keys(include_revoked: bool) -> Call[list[ApiKey]]:
    return _get("/api/keys", _many(ApiKey.from_json), revoked=include_revoked)


def revoke_key(key_id: str) -> Call[ApiKey]:
    return Call("DELETE", f"/api/keys/{_segment(key_id)}", _one(ApiKey.from_json))


# -- inference (KServe V2) ---------------------------------------------------------------


def _readiness(response: httpx.Response) -> bool:
    """200 and 503 both answer ``{"ready": ...}``; any other body (an error's, a proxy's
    page) is not an answer, and becomes the error it stands for."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise NotAnAnswer from None
    if not isinstance(body, dict) or not isinstance(body.get("ready"), bool) or "code" in body:
        raise NotAnAnswer
    return bool(body["ready"])


def live() -> Call[bool]:
    return _get("/v2/health/live", lambda r: dict(document(r)).get("live") is True)


def ready() -> Call[bool]:
    return Call("GET", "/v2/health/ready", _readiness, answers=frozenset({503}))


def model_ready(name: str, ref: Ref | None) -> Call[bool]:
    return Call("GET", f"{_v2_model(name, ref)}/ready", _readiness, answers=frozenset({503}))


def model_metadata(name: str, ref: Ref | None) -> Call[dict[str, Any]]:
    return _get(_v2_model(name, ref), lambda r: dict(document(r)))


def infer(
    name: str,
    inputs: Mapping[str, np.ndarray],
    *,
    version: Ref | None,
    outputs: Sequence[str] | None,
    binary: bool,
    timeout_us: int | None,
    request_id: str | None,
    headers: Mapping[str, str] | None,
) -> Call[InferResult]:
    if isinstance(outputs, str):
        raise InvalidInputError("outputs: a sequence of output names, not one string")
    encoded = encode_request(
        inputs, outputs=outputs, binary=binary, timeout_us=timeout_us, request_id=request_id
    )

    def parse(response: httpx.Response) -> InferResult:
        return decode_response(response.content, response.headers.get(HEADER_LENGTH))

    path = f"{_v2_model(name, version)}/infer"
    return Call(
        "POST", path, parse, content=encoded.body, headers={**(headers or {}), **encoded.headers}
    )
