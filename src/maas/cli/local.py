"""The CLI without a server: the control plane on this configuration's registry.

``LocalTarget`` answers the same calls as the SDK's ``Client``, with the same result
types, so every command is written once and runs against either. Actions that only a
running server can answer (inference, what it holds in memory) say so. A version is
warmed here, in this process, before an alias moves to it; a submitted job gets a worker
process started here, which outlives the command. API keys made here are how an operator
gets the first admin key before any server requires one: whoever can open the registry
needs no key.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from maas import __version__
from maas.cli.identity import actor
from maas.client import (
    Alias,
    AliasMove,
    ApiKey,
    AuditEvent,
    CreatedKey,
    Deployment,
    DeploymentState,
    Drift,
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
from maas.config import Settings
from maas.control import ControlPlane, LocalWarmup
from maas.errors import UnavailableError
from maas.jobs.runner import spawn_worker
from maas.registry.entities import Job as JobRecord
from maas.registry.service import Registry

__all__ = ["ARTIFACT_SUFFIXES", "LocalTarget"]

ARTIFACT_SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}


def _needs_server(what: str) -> UnavailableError:
    return UnavailableError(
        f"{what} needs a running server: start `maas serve`, or point at one with --server URL"
    )


class LocalTarget:
    """This configuration's registry, acted on directly."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._registry = Registry.from_settings(settings)
        self._control = ControlPlane.build(
            self._registry, warmup=LocalWarmup(self._registry), on_job_queued=self._start_worker
        )
        self._actor = actor()
        self.where = f"the registry at {settings.database_display}"

    def _start_worker(self, job: JobRecord) -> None:
        """A queued job gets its own worker process, which outlives this command."""
        spawn_worker(job.id, self._settings, parent=None, claim=True)

    def close(self) -> None:
        self._registry.close()

    def __enter__(self) -> LocalTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def registry(self) -> RegistryInfo:
        return RegistryInfo(id=self._control.registry_id(), maas_version=__version__)

    # -- models and versions ------------------------------------------------------------

    def list_models(self) -> list[Model]:
        return [Model.from_json(m.to_dict()) for m in self._control.models.list_models()]

    def get_model(self, name: str) -> Model:
        return Model.from_json(self._control.models.get_model(name).to_dict())

    def list_versions(self, name: str, *, include_archived: bool = False) -> list[Version]:
        found = self._control.models.list_versions(name, include_archived=include_archived)
        return [Version.from_json(v.to_dict()) for v in found]

    def get_version(self, name: str, ref: int | str | None = None) -> Version:
        return Version.from_json(self._control.models.get_version(name, ref).to_dict())

    def upload(
        self,
        name: str,
        artifact: Path | bytes,
        *,
        format: str = "onnx",
        config: dict[str, Any] | None = None,
        description: str = "",
    ) -> Version:
        lineage = {"filename": artifact.name} if isinstance(artifact, Path) else None
        version = self._control.models.upload(
            name,
            artifact,
            actor=self._actor,
            artifact_format=format,
            description=description,
            config=config,
            lineage=lineage,
            may_carry_code=True,  # the registry's own user may register what it trusts
        )
        return Version.from_json(version.to_dict())

    def archive(self, name: str, ref: int | str, *, reason: str = "") -> Version:
        version = self._control.models.archive(name, ref, actor=self._actor, reason=reason)
        return Version.from_json(version.to_dict())

    def download(
        self,
        name: str,
        ref: int | str,
        destination: Path,
        *,
        format: str | None = None,
    ) -> Path:
        version, source = self._control.models.artifact(name, ref, format)
        chosen = format or version.artifact_format
        target = destination
        if destination.is_dir():
            suffix = ARTIFACT_SUFFIXES.get(chosen, "." + chosen)
            target = destination / f"{name}-{version.version}{suffix}"
        shutil.copyfile(source, target)
        return target

    def get_config(self, name: str, ref: int | str) -> ServingConfig:
        return ServingConfig.from_json(self._control.models.get_config(name, ref).to_dict())

    def set_config(self, name: str, ref: int | str, config: dict[str, Any]) -> ServingConfig:
        result = self._control.models.set_config(name, ref, config, actor=self._actor)
        return ServingConfig.from_json(result.to_dict())

    def get_gate(self, name: str) -> list[dict[str, Any]]:
        return self._control.models.get_gate(name)

    def set_gate(self, name: str, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self._control.models.set_gate(name, rules, actor=self._actor)

    def record_evaluation(self, name: str, ref: int | str, details: dict[str, Any]) -> AuditEvent:
        event = self._control.models.record_evaluation(name, ref, details, actor=self._actor)
        return AuditEvent.from_json(event.to_dict())

    def get_reference(self, name: str, ref: int | str) -> InputReference:
        return InputReference.from_json(self._control.references.get(name, ref).to_dict())

    def set_reference(self, name: str, ref: int | str, reference: dict[str, Any]) -> InputReference:
        stored = self._control.references.set(name, ref, reference, actor=self._actor)
        return InputReference.from_json(stored.to_dict())

    def drift(self, name: str) -> Drift:
        raise _needs_server("input drift (what a server's live inputs look like)")

    # -- aliases ------------------------------------------------------------------------

    def list_aliases(self, name: str) -> list[Alias]:
        return [Alias.from_json(a.to_dict()) for a in self._control.aliases.list_for(name)]

    def set_alias(
        self, name: str, alias: str, ref: int | str, *, force: bool = False, reason: str = ""
    ) -> Alias:
        moved = self._control.aliases.move(
            name, alias, ref, actor=self._actor, force=force, reason=reason
        )
        return Alias.from_json(moved.to_dict())

    def delete_alias(self, name: str, alias: str) -> None:
        self._control.aliases.delete(name, alias, actor=self._actor)

    def alias_history(self, name: str, alias: str) -> list[AliasMove]:
        return [
            AliasMove.from_json(m.to_dict()) for m in self._control.aliases.history(name, alias)
        ]

    def promote(
        self,
        name: str,
        ref: int | str,
        *,
        alias: str = "production",
        force: bool = False,
        reason: str = "",
    ) -> Alias:
        return self.set_alias(name, alias, ref, force=force, reason=reason)

    def rollback(self, name: str, *, alias: str = "production") -> Alias:
        moved = self._control.aliases.rollback(name, alias, actor=self._actor)
        return Alias.from_json(moved.to_dict())

    # -- traffic and deployments --------------------------------------------------------

    def get_traffic(self, name: str) -> Traffic:
        self._control.models.get_model(name)  # NotFoundError for an unknown model
        stored = self._control.traffic.get(name)
        return Traffic(
            model=name,
            policy=None if stored is None else stored.policy,
            actor=None if stored is None else stored.actor,
            updated_at=None if stored is None else stored.updated_at,
            serving=None,
        )

    def set_traffic(self, name: str, policy: dict[str, Any]) -> Traffic:
        self._control.traffic.set(name, policy, actor=self._actor)
        return self.get_traffic(name)

    def clear_traffic(self, name: str) -> None:
        self._control.traffic.clear(name, actor=self._actor)

    def deployments(self, model: str | None = None) -> list[Deployment]:
        raise _needs_server("what is loaded")

    def repository_index(self, *, ready_only: bool = False) -> list[RepositoryEntry]:
        raise _needs_server("the repository index")

    def load(self, name: str) -> DeploymentState:
        state = self._control.deployments.load(name, actor=self._actor)
        return DeploymentState.from_json(state.to_dict())

    def unload(self, name: str) -> DeploymentState:
        state = self._control.deployments.unload(name, actor=self._actor)
        return DeploymentState.from_json(state.to_dict())

    # -- audit and jobs -----------------------------------------------------------------

    def audit(
        self,
        model: str | None = None,
        *,
        action: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[AuditEvent]:
        events = self._control.audit(model, action=action, limit=limit, before=before)
        return [AuditEvent.from_json(e.to_dict()) for e in events]

    def submit_job(self, spec: dict[str, Any]) -> Job:
        return Job.from_json(self._control.jobs.submit(spec, actor=self._actor).to_dict())

    def get_job(self, job_id: int) -> Job:
        return Job.from_json(self._control.jobs.get(job_id).to_dict())

    def list_jobs(self, *, state: str | None = None, limit: int = 100) -> list[Job]:
        found = self._control.jobs.list_jobs(state=state, limit=limit)
        return [Job.from_json(job.to_dict()) for job in found]

    def job_epochs(self, job_id: int) -> list[dict[str, Any]]:
        return self._control.jobs.epochs(job_id)

    def job_logs(self, job_id: int, *, after: int = 0, limit: int = 1000) -> list[JobLogLine]:
        lines = self._control.jobs.logs(job_id, after=after, limit=limit)
        return [JobLogLine.from_json(line.to_dict()) for line in lines]

    def cancel_job(self, job_id: int) -> Job:
        return Job.from_json(self._control.jobs.cancel(job_id, actor=self._actor).to_dict())

    def resume_job(self, job_id: int) -> Job:
        return Job.from_json(self._control.jobs.resume(job_id, actor=self._actor).to_dict())

    # -- API keys -----------------------------------------------------------------------

    def create_key(
        self,
        name: str,
        scopes: Sequence[str],
        *,
        models: Sequence[str] | None = None,
        rate_per_s: float | None = None,
    ) -> CreatedKey:
        created = self._control.keys.create(
            name, scopes, models=models, rate_per_s=rate_per_s, actor=self._actor
        )
        return CreatedKey.from_json({**created.key.to_dict(), "token": created.token})

    def list_keys(self, *, include_revoked: bool = False) -> list[ApiKey]:
        found = self._control.keys.list(include_revoked=include_revoked)
        return [ApiKey.from_json(key.to_dict()) for key in found]

    def revoke_key(self, key_id: str) -> ApiKey:
        return ApiKey.from_json(self._control.keys.revoke(key_id, actor=self._actor).to_dict())
