"""The SDK's answers: one frozen value per JSON document of the API, read by ``from_json``.

The shapes are the server's ``to_dict()`` documents (registry entities and control-plane
views), so a field added there is ignored here until the SDK learns it, rather than
breaking older clients. Timestamps arrive as ISO 8601 with an offset and become aware
``datetime`` objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import numpy as np

from maas.protocol.signature import Signature

__all__ = [
    "Alert",
    "AlertRule",
    "Alerts",
    "Alias",
    "AliasMove",
    "ApiKey",
    "Archive",
    "Artifact",
    "AuditEvent",
    "CreatedKey",
    "Deployment",
    "DeploymentState",
    "Drift",
    "FeatureDrift",
    "InferResult",
    "InputReference",
    "Job",
    "JobLogLine",
    "Model",
    "RegistryInfo",
    "RepositoryEntry",
    "ServingConfig",
    "Traffic",
    "Version",
    "VersionDrift",
]

Document = dict[str, Any]


def _time(value: Any) -> datetime:
    return datetime.fromisoformat(str(value))


def _time_or_none(value: Any) -> datetime | None:
    return None if value is None else _time(value)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class RegistryInfo:
    """Which registry a server serves (its id is made with the database) and its version."""

    id: str
    maas_version: str

    @classmethod
    def from_json(cls, document: Document) -> RegistryInfo:
        return cls(str(document["id"]), str(document["maas_version"]))


@dataclass(frozen=True, slots=True)
class Model:
    """A model: ``versions`` are those in service (not archived), oldest first."""

    name: str
    created_at: datetime
    description: str
    versions: tuple[int, ...]
    aliases: dict[str, int]

    @classmethod
    def from_json(cls, document: Document) -> Model:
        return cls(
            name=str(document["name"]),
            created_at=_time(document["created_at"]),
            description=str(document.get("description", "")),
            versions=tuple(int(v) for v in document.get("versions", ())),
            aliases={str(k): int(v) for k, v in document.get("aliases", {}).items()},
        )


@dataclass(frozen=True, slots=True)
class Artifact:
    """One stored file of a version (the served format, or an extra such as torchscript)."""

    sha256: str
    size_bytes: int

    @classmethod
    def from_json(cls, document: Document) -> Artifact:
        return cls(str(document["sha256"]), int(document["size_bytes"]))


@dataclass(frozen=True, slots=True)
class Archive:
    """When, by whom and why a version was taken out of service."""

    at: datetime
    actor: str
    reason: str

    @classmethod
    def from_json(cls, document: Document) -> Archive:
        return cls(_time(document["at"]), str(document["actor"]), str(document["reason"]))


@dataclass(frozen=True, slots=True)
class Version:
    """One immutable model version; ``format`` is the served artifact's format."""

    model: str
    version: int
    format: str
    artifact_sha256: str
    size_bytes: int
    artifacts: dict[str, Artifact]
    signature: Signature
    metrics: dict[str, Any]
    lineage: dict[str, Any]
    created_at: datetime
    archived: Archive | None

    @classmethod
    def from_json(cls, document: Document) -> Version:
        archived = document.get("archived")
        return cls(
            model=str(document["model"]),
            version=int(document["version"]),
            format=str(document["format"]),
            artifact_sha256=str(document["artifact_sha256"]),
            size_bytes=int(document["size_bytes"]),
            artifacts={
                str(k): Artifact.from_json(v) for k, v in document.get("artifacts", {}).items()
            },
            signature=Signature.from_dict(document["signature"]),
            metrics=dict(document.get("metrics") or {}),
            lineage=dict(document.get("lineage") or {}),
            created_at=_time(document["created_at"]),
            archived=None if archived is None else Archive.from_json(archived),
        )


@dataclass(frozen=True, slots=True)
class Alias:
    """Where an alias points now."""

    model: str
    alias: str
    version: int
    updated_at: datetime

    @classmethod
    def from_json(cls, document: Document) -> Alias:
        return cls(
            str(document["model"]),
            str(document["alias"]),
            int(document["version"]),
            _time(document["updated_at"]),
        )


@dataclass(frozen=True, slots=True)
class AliasMove:
    """One entry of an alias's history: ``kind`` is set, rollback or delete (``version``
    None); ``previous`` is where it pointed before (None: nowhere); ``forced`` moved it
    past a failing validation gate."""

    id: int
    model: str
    alias: str
    kind: str
    version: int | None
    previous: int | None
    actor: str
    at: datetime
    forced: bool
    reason: str

    @classmethod
    def from_json(cls, document: Document) -> AliasMove:
        return cls(
            id=int(document["id"]),
            model=str(document["model"]),
            alias=str(document["alias"]),
            kind=str(document["kind"]),
            version=_int_or_none(document.get("version")),
            previous=_int_or_none(document.get("previous")),
            actor=str(document["actor"]),
            at=_time(document["at"]),
            forced=bool(document.get("forced", False)),
            reason=str(document.get("reason", "")),
        )


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One append-only record of a change: who did what to which model and version."""

    id: int
    at: datetime
    action: str
    model: str
    version: int | None
    actor: str
    details: dict[str, Any]

    @classmethod
    def from_json(cls, document: Document) -> AuditEvent:
        return cls(
            id=int(document["id"]),
            at=_time(document["at"]),
            action=str(document["action"]),
            model=str(document["model"]),
            version=_int_or_none(document.get("version")),
            actor=str(document["actor"]),
            details=dict(document.get("details") or {}),
        )


@dataclass(frozen=True, slots=True)
class ServingConfig:
    """A version's effective serving config (defaults filled in); ``revision`` 0 means
    the version never had a config of its own."""

    model: str
    version: int
    revision: int
    config: dict[str, Any]

    @classmethod
    def from_json(cls, document: Document) -> ServingConfig:
        return cls(
            str(document["model"]),
            int(document["version"]),
            int(document["revision"]),
            dict(document["config"]),
        )


@dataclass(frozen=True, slots=True)
class Traffic:
    """A model's stored traffic policy (None: none) and what the answering server applies
    now (``serving``: None when it holds nothing of the model)."""

    model: str
    policy: dict[str, Any] | None
    actor: str | None
    updated_at: datetime | None
    serving: dict[str, Any] | None

    @classmethod
    def from_json(cls, document: Document) -> Traffic:
        actor = document.get("actor")
        return cls(
            model=str(document["model"]),
            policy=document.get("policy"),
            actor=None if actor is None else str(actor),
            updated_at=_time_or_none(document.get("updated_at")),
            serving=document.get("serving"),
        )


@dataclass(frozen=True, slots=True)
class Deployment:
    """A version the answering server holds, loads or failed to load (``state`` ready,
    loading, failed, not_loaded), or an unloaded model (``version`` None)."""

    model: str
    version: int | None
    state: str
    routes: tuple[str, ...]
    pinned: bool
    reason: str | None
    resident_bytes: int | None
    idle_s: float | None
    config_revision: int | None
    attempts: int | None
    retry_in_s: float | None

    @classmethod
    def from_json(cls, document: Document) -> Deployment:
        reason = document.get("reason")
        return cls(
            model=str(document["model"]),
            version=_int_or_none(document.get("version")),
            state=str(document["state"]),
            routes=tuple(str(r) for r in document.get("routes") or ()),
            pinned=bool(document.get("pinned", False)),
            reason=None if reason is None else str(reason),
            resident_bytes=_int_or_none(document.get("resident_bytes")),
            idle_s=_float_or_none(document.get("idle_s")),
            config_revision=_int_or_none(document.get("config_revision")),
            attempts=_int_or_none(document.get("attempts")),
            retry_in_s=_float_or_none(document.get("retry_in_s")),
        )


@dataclass(frozen=True, slots=True)
class DeploymentState:
    """Whether servers should serve a model: ``loaded`` (the default) or ``unloaded``."""

    model: str
    state: str
    actor: str
    updated_at: datetime | None

    @classmethod
    def from_json(cls, document: Document) -> DeploymentState:
        return cls(
            str(document["model"]),
            str(document["state"]),
            str(document["actor"]),
            _time_or_none(document.get("updated_at")),
        )


@dataclass(frozen=True, slots=True)
class RepositoryEntry:
    """One row of the V2 repository index: ``state`` READY, LOADING or UNAVAILABLE;
    ``version`` is "" for a model the server holds nothing of."""

    name: str
    version: str
    state: str
    reason: str

    @classmethod
    def from_json(cls, document: Document) -> RepositoryEntry:
        return cls(
            str(document["name"]),
            str(document.get("version", "")),
            str(document["state"]),
            str(document.get("reason", "")),
        )


@dataclass(frozen=True, slots=True)
class Job:
    """A training job: state, progress (``epoch``/``step`` count finished ones), the
    latest epoch's metrics, and the version it registered once it succeeded."""

    id: int
    state: str
    model: str
    spec: dict[str, Any]
    actor: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    epoch: int
    epochs: int
    step: int
    steps: int
    eta_s: float | None
    metrics: dict[str, Any]
    error: str
    version: int | None
    cancel_requested: bool
    checkpoint_epoch: int
    worker: str

    @classmethod
    def from_json(cls, document: Document) -> Job:
        return cls(
            id=int(document["id"]),
            state=str(document["state"]),
            model=str(document["model"]),
            spec=dict(document.get("spec") or {}),
            actor=str(document["actor"]),
            created_at=_time(document["created_at"]),
            updated_at=_time(document["updated_at"]),
            started_at=_time_or_none(document.get("started_at")),
            finished_at=_time_or_none(document.get("finished_at")),
            attempts=int(document.get("attempts", 0)),
            epoch=int(document.get("epoch", 0)),
            epochs=int(document.get("epochs", 0)),
            step=int(document.get("step", 0)),
            steps=int(document.get("steps", 0)),
            eta_s=_float_or_none(document.get("eta_s")),
            metrics=dict(document.get("metrics") or {}),
            error=str(document.get("error", "")),
            version=_int_or_none(document.get("version")),
            cancel_requested=bool(document.get("cancel_requested", False)),
            checkpoint_epoch=int(document.get("checkpoint_epoch", 0)),
            worker=str(document.get("worker", "")),
        )


@dataclass(frozen=True, slots=True)
class JobLogLine:
    """One line of a job's log; ``id`` grows, so ``job_logs(after=id)`` follows a log."""

    id: int
    at: datetime
    level: str
    message: str

    @classmethod
    def from_json(cls, document: Document) -> JobLogLine:
        return cls(
            int(document["id"]),
            _time(document["at"]),
            str(document["level"]),
            str(document["message"]),
        )


@dataclass(frozen=True, slots=True)
class InferResult:
    """An inference answer: ``model_version`` says which version answered (the default
    route may spread requests over several). BYTES outputs are object arrays of ``bytes``.

    Outputs sent as binary tensors are read-only views of the response body (no copy);
    ``np.array(result["y"])`` gives a writable copy.

    >>> result = InferResult("m", "1", None, {"y": np.zeros(2)}, {})
    >>> result["y"].shape
    (2,)
    """

    model_name: str
    model_version: str
    id: str | None
    outputs: dict[str, np.ndarray]
    parameters: dict[str, Any]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.outputs[name]


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key as the server lists it: never its token (nor the hash the registry
    keeps of it). ``models`` None: every model; ``rate_per_s`` None: no rate limit;
    ``revoked_at`` None: the key works."""

    id: str
    name: str
    scopes: tuple[str, ...]
    models: tuple[str, ...] | None
    rate_per_s: float | None
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    revoked_by: str | None

    @classmethod
    def from_json(cls, document: Document) -> ApiKey:
        models = document.get("models")
        return cls(
            id=str(document["id"]),
            name=str(document["name"]),
            scopes=tuple(str(s) for s in document["scopes"]),
            models=None if models is None else tuple(str(m) for m in models),
            rate_per_s=_float_or_none(document.get("rate_per_s")),
            created_at=_time(document["created_at"]),
            created_by=str(document["created_by"]),
            revoked_at=_time_or_none(document.get("revoked_at")),
            revoked_by=_str_or_none(document.get("revoked_by")),
        )


@dataclass(frozen=True, slots=True)
class CreatedKey(ApiKey):
    """A key just created, with its ``token``: the only time anyone is shown it (the
    server keeps a hash). Send it as ``Client(url, api_key=created.token)`` or the header
    ``Authorization: Bearer <token>``. ``repr`` leaves the token out, so a log line or a
    traceback that prints the value does not give the key away.

    >>> created = CreatedKey("0f3a9c2e71bd", "ci", ("read",), None, None,
    ...     datetime(2024, 1, 1), "cli", None, None, token="maas_0f3a9c2e71bd_secret")
    >>> "secret" in repr(created)
    False
    """

    token: str = field(repr=False, kw_only=True)

    @classmethod
    def from_json(cls, document: Document) -> CreatedKey:
        key = ApiKey.from_json(document)
        return cls(
            **{f.name: getattr(key, f.name) for f in fields(ApiKey)}, token=str(document["token"])
        )

    @property
    def key(self) -> ApiKey:
        """The key without its token (what ``list_keys`` shows of it)."""
        return ApiKey(**{f.name: getattr(self, f.name) for f in fields(ApiKey)})


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A rule the server evaluates (its rules file): ``value > threshold`` per model and
    version, over ``window_s``, held ``for_s`` before firing; ``model`` None: every model;
    ``webhooks`` where it notifies (scheme, host and port only)."""

    name: str
    kind: str
    threshold: float
    window_s: float
    for_s: float
    model: str | None
    severity: str
    webhooks: tuple[str, ...]

    @classmethod
    def from_json(cls, document: Document) -> AlertRule:
        return cls(
            name=str(document["name"]),
            kind=str(document["kind"]),
            threshold=float(document["threshold"]),
            window_s=float(document["window_s"]),
            for_s=float(document["for_s"]),
            model=_str_or_none(document.get("model")),
            severity=str(document.get("severity", "")),
            webhooks=tuple(str(w) for w in document.get("webhooks") or ()),
        )


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: ``state`` pending, firing or resolved; ``value`` the rule's value at the
    last evaluation; ``since`` when its condition started holding."""

    rule: str
    kind: str
    state: str
    model: str
    version: str
    value: float | None
    threshold: float
    labels: dict[str, str]
    annotations: dict[str, str]
    since: datetime
    fired_at: datetime | None
    resolved_at: datetime | None

    @classmethod
    def from_json(cls, document: Document) -> Alert:
        return cls(
            rule=str(document["rule"]),
            kind=str(document["kind"]),
            state=str(document["state"]),
            model=str(document["model"]),
            version=str(document["version"]),
            value=_float_or_none(document.get("value")),
            threshold=float(document["threshold"]),
            labels={str(k): str(v) for k, v in (document.get("labels") or {}).items()},
            annotations={str(k): str(v) for k, v in (document.get("annotations") or {}).items()},
            since=_time(document["since"]),
            fired_at=_time_or_none(document.get("fired_at")),
            resolved_at=_time_or_none(document.get("resolved_at")),
        )


@dataclass(frozen=True, slots=True)
class Alerts:
    """``GET /api/alerts``: ``current`` (pending and firing, firing first), ``recent``
    (resolved, newest first), the ``rules`` loaded and the webhook deliveries so far."""

    evaluated_at: datetime | None
    interval_s: float
    rules: tuple[AlertRule, ...]
    current: tuple[Alert, ...]
    recent: tuple[Alert, ...]
    notifications: dict[str, int]

    @classmethod
    def from_json(cls, document: Document) -> Alerts:
        return cls(
            evaluated_at=_time_or_none(document.get("evaluated_at")),
            interval_s=float(document["interval_s"]),
            rules=tuple(AlertRule.from_json(r) for r in document.get("rules") or ()),
            current=tuple(Alert.from_json(a) for a in document.get("current") or ()),
            recent=tuple(Alert.from_json(a) for a in document.get("recent") or ()),
            notifications={
                str(k): int(v) for k, v in (document.get("notifications") or {}).items()
            },
        )


@dataclass(frozen=True, slots=True)
class InputReference:
    """A version's input reference: the statistics its live inputs are compared with for
    drift. ``reference`` is the document (``source``, ``rows``, ``inputs``, ``features``:
    per feature its quantiles and PSI bins); ``revision`` grows at each replacement."""

    model: str
    version: int
    revision: int
    actor: str
    updated_at: datetime
    reference: dict[str, Any]

    @property
    def source(self) -> dict[str, Any]:
        """What it was built from: ``kind`` training or dataset, ``dataset``, ``sha256``."""
        return dict(self.reference.get("source") or {})

    @classmethod
    def from_json(cls, document: Document) -> InputReference:
        return cls(
            model=str(document["model"]),
            version=int(document["version"]),
            revision=int(document["revision"]),
            actor=str(document["actor"]),
            updated_at=_time(document["updated_at"]),
            reference=dict(document["reference"]),
        )


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """One input feature's PSI and Kolmogorov-Smirnov statistic against the reference."""

    name: str
    psi: float
    ks: float


@dataclass(frozen=True, slots=True)
class VersionDrift:
    """One loaded version's input drift on the server that answered: its live window
    (``window_rows`` its size, ``rows`` held, ``sampled_every`` request kept), the
    reference's summary (None: the version has none), the summary ``score`` (the largest
    per-feature PSI; None until ``min_rows`` rows) against ``threshold``."""

    model: str
    version: int
    window_rows: int
    rows: int
    sampled_every: int
    reference: dict[str, Any] | None
    score: float | None
    threshold: float | None
    drifted: bool | None
    min_rows: int | None
    computed_at: datetime | None
    features: tuple[FeatureDrift, ...]

    @classmethod
    def from_json(cls, document: Document) -> VersionDrift:
        drifted = document.get("drifted")
        return cls(
            model=str(document["model"]),
            version=int(document["version"]),
            window_rows=int(document["window_rows"]),
            rows=int(document["rows"]),
            sampled_every=int(document.get("sampled_every", 1)),
            reference=None if document.get("reference") is None else dict(document["reference"]),
            score=_float_or_none(document.get("score")),
            threshold=_float_or_none(document.get("threshold")),
            drifted=None if drifted is None else bool(drifted),
            min_rows=_int_or_none(document.get("min_rows")),
            computed_at=_time_or_none(document.get("computed_at")),
            features=tuple(
                FeatureDrift(str(f["name"]), float(f["psi"]), float(f["ks"]))
                for f in document.get("features") or ()
            ),
        )


@dataclass(frozen=True, slots=True)
class Drift:
    """``GET /api/models/{name}/drift``: the input drift of each loaded version."""

    model: str
    versions: tuple[VersionDrift, ...]

    @classmethod
    def from_json(cls, document: Document) -> Drift:
        versions = tuple(VersionDrift.from_json(v) for v in document.get("versions") or ())
        return cls(str(document["model"]), versions)
