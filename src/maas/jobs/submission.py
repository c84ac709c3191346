"""Submitting a job of any kind: the spec is validated in full before anything is queued.

Validation loads the dataset and imports the user's model factory, which is user code
and may take memory; it runs in a short-lived child process (``python -m
maas.jobs.validate``) so that neither happens inside the serving process.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import subprocess
import sys
from typing import Any, Final

from maas.errors import InvalidInputError, NotFoundError, UnavailableError
from maas.jobs.kinds import AnyJobSpec, TrainSpec, job_epochs, parse_job
from maas.jobs.policy import SubmissionPolicy
from maas.optimize.parents import Parent, VersionLookup, resolve
from maas.registry.entities import Job
from maas.registry.service import Registry
from maas.training.language.spec import LanguageModelSpec

__all__ = ["VALIDATION_TIMEOUT_S", "submit_job", "training_available", "validate_document"]

VALIDATION_TIMEOUT_S: Final = 300.0
_log = logging.getLogger(__name__)


def training_available() -> bool:
    """Whether this environment can run jobs (the ``maas[torch]`` extra is installed)."""
    return importlib.util.find_spec("torch") is not None


def _run_validator(job: dict[str, Any]) -> None:
    """The checks that read data or build a network, in a child process."""
    try:
        result = subprocess.run(
            [sys.executable, "-m", "maas.jobs.validate"],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            timeout=VALIDATION_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise InvalidInputError(
            f"spec: validation took longer than {VALIDATION_TIMEOUT_S:g} s (dataset too large?)",
            {"field": "spec"},
        ) from None
    said = result.stderr.strip()
    if said:  # a traceback or the user's code printing: for the server's log, not the caller
        _log.warning("the spec validator (exit code %d) wrote:\n%s", result.returncode, said)
    try:
        verdict = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise UnavailableError(
            f"the spec validator exited with code {result.returncode} before deciding "
            "(the server's log says why)"
        ) from None
    if "error" in verdict:
        raise InvalidInputError(verdict["error"]["message"], verdict["error"]["details"])


def validate_document(
    document: dict[str, Any], policy: SubmissionPolicy, registry: VersionLookup | None = None
) -> tuple[dict[str, Any], AnyJobSpec]:
    """The job as a canonical JSON document (and its parsed spec), or ``InvalidInputError``
    naming the field.

    The cheap checks, the parent's resolution (optimisations: pinned to a version number,
    defaults filled from its lineage, ``registry`` required) and ``policy`` run here;
    reading the data and building networks run in the child process. A training job's
    canonical document has no ``kind`` (training is the default kind)."""
    spec = parse_job(document)
    parent: Parent | None = None
    if not isinstance(spec, TrainSpec | LanguageModelSpec):
        if registry is None:
            raise UnavailableError("optimisation jobs need the registry to resolve the parent")
        spec, parent = resolve(registry, spec)
    spec = policy.apply(spec, parent)
    canonical = spec.model_dump(
        mode="json", exclude={"kind"} if isinstance(spec, TrainSpec) else None
    )
    _run_validator({"spec": canonical, "parent": None if parent is None else parent.to_dict()})
    return canonical, spec


def _check_parent(registry: Registry, init_from: str) -> None:
    """``init_from`` must name a registered version with weights to start from (the
    architecture's fit is checked when the job loads them)."""
    name, _, ref = init_from.partition(":")
    try:
        parent = registry.resolve(name, ref)
    except NotFoundError as error:
        raise InvalidInputError(f"init_from: {error.message}", {"field": "init_from"}) from None
    if "torchscript" not in parent.artifacts:
        raise InvalidInputError(
            f"init_from: version {parent.version} of {name!r} has no TorchScript weights to "
            "start from (only versions trained by maas have them)",
            {"field": "init_from"},
        )


def submit_job(
    registry: Registry,
    document: dict[str, Any],
    *,
    actor: str,
    policy: SubmissionPolicy | None = None,
) -> Job:
    """Validate ``document`` (a job of any kind) under ``policy`` (default: anything goes,
    as for a local run) and queue it; nothing is queued if it is refused."""
    if not training_available():
        raise UnavailableError(
            "this maas installation cannot train or optimise: install the torch extra "
            "(pip install 'maas[torch]')"
        )
    canonical, spec = validate_document(document, policy or SubmissionPolicy(), registry)
    if isinstance(spec, TrainSpec) and spec.init_from:
        _check_parent(registry, spec.init_from)
    model_name = spec.model_name
    assert model_name is not None  # resolve fills an optimisation's model name
    return registry.jobs.submit(model_name, canonical, actor=actor, epochs=job_epochs(spec))
