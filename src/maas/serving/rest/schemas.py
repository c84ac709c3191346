"""The management API's JSON documents, as pydantic models: they validate what comes in,
shape what goes out (from the entities' ``to_dict``, the one source of each shape) and
describe both in the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, StrictInt, StrictStr

__all__ = [
    "AliasIn",
    "AliasMoveOut",
    "AliasOut",
    "ArchiveIn",
    "ArchiveOut",
    "ArtifactOut",
    "AuditOut",
    "ConfigOut",
    "DeploymentOut",
    "DeploymentStateOut",
    "ErrorOut",
    "GateIn",
    "KeyCreatedOut",
    "KeyIn",
    "KeyOut",
    "ModelOut",
    "PromoteIn",
    "RegistryOut",
    "RollbackIn",
    "SignatureOut",
    "TensorOut",
    "TrafficOut",
    "VersionOut",
]

#: Strict: JSON ``true`` or ``1.0`` is no version (lax pydantic would read either as 1).
VersionRef = StrictInt | StrictStr


class ErrorOut(BaseModel):
    """Every error answer: a message for people, a stable code for programs."""

    error: str = Field(description="What went wrong, in words; names the field at fault.")
    code: str = Field(description="Stable machine-readable code: invalid_input, not_found, ...")
    details: dict[str, Any] | None = Field(None, description="Structured facts, e.g. field.")


class TensorOut(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class SignatureOut(BaseModel):
    inputs: list[TensorOut]
    outputs: list[TensorOut]


class ArtifactOut(BaseModel):
    sha256: str
    size_bytes: int


class ArchiveOut(BaseModel):
    at: datetime
    actor: str
    reason: str


class VersionOut(BaseModel):
    model: str
    version: int
    artifact_sha256: str
    format: str
    size_bytes: int
    artifacts: dict[str, ArtifactOut] = Field(
        description="Every artifact by format: the served one and extras such as torchscript."
    )
    signature: SignatureOut
    metrics: dict[str, Any]
    lineage: dict[str, Any]
    created_at: datetime
    archived: ArchiveOut | None = Field(description="Set once the version is out of service.")


class ModelOut(BaseModel):
    name: str
    created_at: datetime
    description: str
    versions: list[int] = Field(description="Versions in service (not archived), oldest first.")
    aliases: dict[str, int]


class AliasOut(BaseModel):
    model: str
    alias: str
    version: int
    updated_at: datetime


class AliasMoveOut(BaseModel):
    id: int
    model: str
    alias: str
    kind: str = Field(description="set, rollback or delete")
    version: int | None = Field(description="Where the alias pointed after (None: deleted).")
    previous: int | None = Field(description="Where it pointed before (None: nowhere).")
    actor: str
    at: datetime
    forced: bool = Field(description="Moved past a failing validation gate.")
    reason: str


class AliasIn(BaseModel):
    version: VersionRef = Field(description="A version number, or an alias to copy.")
    force: bool = Field(False, description="Move production past a failing validation gate.")
    reason: str = Field("", description="Why the gate is forced; required with force.")


class PromoteIn(AliasIn):
    alias: str = Field("production", description="The alias to move.")


class RollbackIn(BaseModel):
    alias: str = Field("production", description="The alias to move back one step.")


class ArchiveIn(BaseModel):
    reason: str = Field("", description="Why the version leaves service (kept in the audit).")


class GateIn(BaseModel):
    rules: list[dict[str, Any]] = Field(
        description='e.g. [{"metric": "accuracy", "min": 0.95}, '
        '{"metric": "accuracy", "max_drop_vs_production": 0.01}, '
        '{"metric": "accuracy", "max_drop_vs_parent": 0.01}] (an optimised version against '
        "its parent, as its optimisation report measured both); [] removes the gate."
    )


class ConfigOut(BaseModel):
    model: str
    version: int
    revision: int = Field(description="0 when the version never had a config of its own.")
    config: dict[str, Any] = Field(description="The effective config, defaults filled in.")


class AuditOut(BaseModel):
    id: int
    at: datetime
    action: str
    model: str
    version: int | None
    actor: str
    details: dict[str, Any]


class RegistryOut(BaseModel):
    id: str = Field(description="The registry's identity, made with its database.")
    maas_version: str


class TrafficOut(BaseModel):
    model: str
    policy: dict[str, Any] | None = Field(description="The stored policy (None: no policy).")
    actor: str | None
    updated_at: datetime | None
    serving: dict[str, Any] | None = Field(
        description="What this server applies now: the default version, the split with the "
        "requests each version got, the shadow's comparison report, and why a stored policy "
        "is held back (a target not warm yet)."
    )


class DeploymentStateOut(BaseModel):
    model: str
    state: str = Field(description="loaded (served) or unloaded")
    actor: str
    updated_at: datetime | None


class DeploymentOut(BaseModel):
    model: str
    version: int | None
    state: str = Field(description="ready, loading, failed, not_loaded or unloaded")
    routes: list[str] = Field(default_factory=list, description="Routes sending traffic here.")
    pinned: bool = False
    reason: str | None = None
    resident_bytes: int | None = None
    idle_s: float | None = None
    config_revision: int | None = None
    attempts: int | None = None
    retry_in_s: float | None = None


class KeyIn(BaseModel):
    name: str = Field(description="What the key is for, e.g. ci-deployer (1-63 characters).")
    scopes: list[str] = Field(description="Any of admin, deploy, train, predict, read.")
    models: list[str] | None = Field(
        None, description="Limit the key to these models (default: every model)."
    )
    rate_per_s: float | None = Field(
        None, description="Requests a second this key may make (default: no limit)."
    )


class KeyOut(BaseModel):
    id: str = Field(description="The key's public id (the token's second part).")
    name: str
    scopes: list[str]
    models: list[str] | None
    rate_per_s: float | None
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str | None


class KeyCreatedOut(KeyOut):
    token: str = Field(
        description="The key itself, shown this once: send it as 'Authorization: Bearer <token>'."
    )
