"""``ControlPlane``: every management action of maas, one object per concern.

REST routes, gRPC repository calls, the CLI (without a server) and, through the API,
the SDK are adapters over this: they parse, call, encode. The seams it is built with
say where it runs: a server passes its own warm-up (its deployments load the version)
and wakes its job runner; the CLI passes ``LocalWarmup`` and starts job workers itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from maas.control.access import ApiKeys
from maas.control.aliases import Aliases
from maas.control.deployments import DeploymentControl
from maas.control.jobs import Jobs
from maas.control.models import Models
from maas.control.references import References
from maas.control.traffic import Traffic
from maas.control.warmup import Warmup
from maas.jobs.policy import SubmissionPolicy
from maas.registry.entities import AuditEvent, Job
from maas.registry.service import Registry

__all__ = ["ControlPlane"]


@dataclass(frozen=True, slots=True)
class ControlPlane:
    """>>> control = ControlPlane.build(registry, warmup=LocalWarmup(registry))  # doctest: +SKIP
    >>> control.aliases.move("digits", "production", 3, actor="cli:ann")  # doctest: +SKIP
    """

    registry: Registry
    models: Models
    aliases: Aliases
    traffic: Traffic
    deployments: DeploymentControl
    jobs: Jobs
    keys: ApiKeys
    references: References

    @classmethod
    def build(
        cls,
        registry: Registry,
        *,
        warmup: Warmup,
        job_policy: SubmissionPolicy | None = None,
        on_job_queued: Callable[[Job], None] | None = None,
        on_job_cancelled: Callable[[Job], None] | None = None,
    ) -> ControlPlane:
        return cls(
            registry=registry,
            models=Models(registry, warmup),
            aliases=Aliases(registry, warmup),
            traffic=Traffic(registry, warmup),
            deployments=DeploymentControl(registry, warmup),
            jobs=Jobs(
                registry,
                job_policy or SubmissionPolicy(),
                on_job_queued or (lambda job: None),
                on_job_cancelled,
            ),
            keys=ApiKeys(registry.keys),
            references=References(registry),
        )

    def registry_id(self) -> str:
        """The identity of the registry this control plane acts on."""
        return self.registry.registry_id()

    def audit(
        self,
        model: str | None = None,
        *,
        action: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[AuditEvent]:
        """The audit log, newest first (``action``: a kind such as ``alias.set`` or a
        family such as ``alias``; ``before``: an event id, to page back)."""
        return self.registry.audit_log(model, limit, action=action, before=before)
