"""``Client``: the management API, jobs and inference of a maas server, synchronously.

Each method is one line over a call described in ``_calls``; ``_run`` is the executor
(``AsyncClient`` has the same methods over its own). Errors are the maas error tree:
the class the server's body names, ``UnavailableError`` when the server cannot be reached.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx
import numpy as np

from . import _calls as calls
from ._errors import transport_error
from ._plan import Call, Plan, auth_headers, build_request, finish, trust
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

__all__ = ["Client"]

T = TypeVar("T")
Ref = int | str


class Client:
    """A maas server's API, over one pooled HTTP connection; use it as a context manager.

        ``api_key`` (a token from ``create_key`` or ``maas keys create``) goes with every
        request as ``Authorization: Bearer <api_key>``; a server that requires keys answers
        ``UnauthenticatedError`` without one, ``ForbiddenError`` when the key lacks the scope
        or the model, ``RateLimitedError`` over its rate. ``repr`` never shows it.

        With ``registry_id``, the first call checks that the server serves that registry
        (``RegistryMismatchError`` if not), so a configuration never acts on another
        registry's server. A ``https://`` server's certificate is verified (against the
    system's authorities, or the PEM file ``verify`` names; ``False`` turns it off).
    ``transport`` replaces httpx's (tests, proxies).

        >>> with Client("http://127.0.0.1:8080", api_key=token) as maas:  # doctest: +SKIP
        ...     maas.promote("iris", 3)
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        registry_id: str | None = None,
        verify: bool | str | ssl.SSLContext = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._registry_id = registry_id
        self._verified = registry_id is None
        self._http = httpx.Client(
            base_url=self._base_url,
            headers=auth_headers(api_key),
            timeout=timeout_s,
            verify=trust(verify),
            transport=transport,
        )

    @property
    def base_url(self) -> str:
        return self._base_url

    def __repr__(self) -> str:
        return f"Client({self._base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- the executor ----------------------------------------------------------------------

    def _run(self, plan: Call[T] | Plan[T]) -> T:
        if not self._verified and self._registry_id is not None:
            self._send(calls.check_registry(self._base_url, self._registry_id))
            self._verified = True  # once per client; a failed check is tried again
        if isinstance(plan, Call):
            return self._send(plan)
        try:
            call = next(plan)
            while True:
                call = plan.send(self._send(call))
        except StopIteration as done:
            result: T = done.value
            return result
        finally:
            plan.close()

    def _send(self, call: Call[T]) -> T:
        request = build_request(self._http, call)
        try:
            response = self._http.send(request, stream=True)
            try:
                if call.sink is not None and response.is_success:
                    with call.sink.writing() as write:
                        for chunk in response.iter_bytes():
                            write(chunk)
                else:
                    response.read()
            finally:
                response.close()
        except httpx.TransportError as exc:
            raise transport_error(self._base_url, request, exc) from exc
        return finish(self._base_url, call, response)

    # -- the registry, models and versions -------------------------------------------------

    def registry(self) -> RegistryInfo:
        """Which registry the server serves, and its maas version."""
        return self._run(calls.registry())

    def list_models(self) -> list[Model]:
        return self._run(calls.list_models())

    def get_model(self, name: str) -> Model:
        return self._run(calls.get_model(name))

    def list_versions(self, name: str, *, include_archived: bool = False) -> list[Version]:
        return self._run(calls.list_versions(name, include_archived))

    def get_version(self, name: str, ref: Ref | None = None) -> Version:
        """A version by number or alias; None: the default (production, else the newest)."""
        return self._run(calls.get_version(name, ref))

    def upload(
        self,
        name: str,
        artifact: Path | bytes,
        *,
        format: str = "onnx",
        config: dict[str, Any] | None = None,
        description: str = "",
        idempotency_key: str | None = None,
    ) -> Version:
        """Register a model file as a new version; the server loads it before storing it.

        The request carries an ``Idempotency-Key`` (a new uuid4 unless given): after an
        ``UnavailableError`` that may hide a finished upload, call again with the same
        ``idempotency_key`` to get the version it made instead of a second one."""
        call = calls.upload(name, artifact, format, config, description, idempotency_key)
        return self._run(call)

    def archive(self, name: str, ref: Ref, *, reason: str = "") -> Version:
        """Take a version out of service (refused while an alias or the traffic names it)."""
        return self._run(calls.archive(name, ref, reason))

    def download(
        self, name: str, ref: Ref | None, destination: Path, *, format: str | None = None
    ) -> Path:
        """Stream an artifact (the served format unless ``format``) to ``destination``, or
        into it as ``NAME-VERSION.onnx`` (``.pt``, ``.FORMAT``) when it is a folder; its
        sha256 is checked before the file appears. Returns the file's path."""
        return self._run(calls.download(name, ref, Path(destination), format))

    def get_config(self, name: str, ref: Ref) -> ServingConfig:
        return self._run(calls.get_config(name, ref))

    def set_config(self, name: str, ref: Ref, config: dict[str, Any]) -> ServingConfig:
        """Store a new revision of a version's serving config (validated by the server)."""
        return self._run(calls.set_config(name, ref, config))

    def get_gate(self, name: str) -> list[dict[str, Any]]:
        return self._run(calls.get_gate(name))

    def set_gate(self, name: str, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rules a version must pass to become production; ``[]`` removes the gate."""
        return self._run(calls.set_gate(name, rules))

    def record_evaluation(self, name: str, ref: Ref, details: dict[str, Any]) -> AuditEvent:
        return self._run(calls.record_evaluation(name, ref, details))

    def get_reference(self, name: str, ref: Ref) -> InputReference:
        """The version's input reference (``NotFoundError`` when it has none)."""
        return self._run(calls.get_reference(name, ref))

    def set_reference(self, name: str, ref: Ref, reference: dict[str, Any]) -> InputReference:
        """Set or replace the version's input reference: a document as
        ``maas.monitoring.drift.Reference.build(...).to_dict()`` makes it."""
        return self._run(calls.set_reference(name, ref, reference))

    def drift(self, name: str) -> Drift:
        """Input drift of the model's loaded versions on this server."""
        return self._run(calls.drift(name))

    # -- aliases and promotion -------------------------------------------------------------

    def list_aliases(self, name: str) -> list[Alias]:
        return self._run(calls.list_aliases(name))

    def set_alias(
        self, name: str, alias: str, ref: Ref, *, force: bool = False, reason: str = ""
    ) -> Alias:
        """Point ``alias`` at a version (a number, or another alias to copy); answers
        once the version is warm, or raises ``GateFailedError``/``NotServableError``."""
        return self._run(calls.set_alias(name, alias, ref, force, reason))

    def delete_alias(self, name: str, alias: str) -> None:
        return self._run(calls.delete_alias(name, alias))

    def alias_history(self, name: str, alias: str) -> list[AliasMove]:
        """Every move of an alias, oldest first."""
        return self._run(calls.alias_history(name, alias))

    def promote(
        self,
        name: str,
        ref: Ref,
        *,
        alias: str = "production",
        force: bool = False,
        reason: str = "",
    ) -> Alias:
        """Move ``alias`` (production) to a version past the gate; ``force`` needs a reason."""
        return self._run(calls.promote(name, ref, alias, force, reason))

    def rollback(self, name: str, *, alias: str = "production") -> Alias:
        """Move ``alias`` back to where it pointed before (one step per call)."""
        return self._run(calls.rollback(name, alias))

    # -- traffic and deployments -----------------------------------------------------------

    def get_traffic(self, name: str) -> Traffic:
        return self._run(calls.get_traffic(name))

    def set_traffic(self, name: str, policy: dict[str, Any]) -> Traffic:
        """Store a traffic policy: ``{"split": [{"target", "weight"}], "sticky_header",
        "shadow": {"target", "fraction"}}``; every target is warmed first."""
        return self._run(calls.set_traffic(name, policy))

    def clear_traffic(self, name: str) -> None:
        return self._run(calls.clear_traffic(name))

    def deployments(self, model: str | None = None) -> list[Deployment]:
        """What the answering server holds, loads or failed to load."""
        return self._run(calls.deployments(model))

    def load(self, name: str) -> DeploymentState:
        """Serve the model (again); answers once its default version is warm."""
        return self._run(calls.load(name))

    def unload(self, name: str) -> DeploymentState:
        return self._run(calls.unload(name))

    def repository_index(self, *, ready_only: bool = False) -> list[RepositoryEntry]:
        return self._run(calls.repository_index(ready_only))

    def audit(
        self,
        model: str | None = None,
        *,
        action: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[AuditEvent]:
        """The audit log, newest first; ``action`` is a kind (alias.set) or a family
        (alias); ``before`` an event id, to page back."""
        return self._run(calls.audit(model, action, limit, before))

    def alerts(self) -> Alerts:
        """The server's alerts: pending and firing now, resolved lately, and its rules."""
        return self._run(calls.alerts())

    # -- jobs ------------------------------------------------------------------------------

    def submit_job(self, spec: dict[str, Any]) -> Job:
        """Queue a job (its ``kind``: train, the default, or quantize, prune, distill); the
        server validates the spec in full first."""
        return self._run(calls.submit_job(spec))

    def get_job(self, job_id: int) -> Job:
        return self._run(calls.get_job(job_id))

    def list_jobs(self, *, state: str | None = None, limit: int = 100) -> list[Job]:
        return self._run(calls.list_jobs(state, limit))

    def job_epochs(self, job_id: int) -> list[dict[str, Any]]:
        """One entry per finished epoch: epoch, train_loss, val_loss, val_accuracy, ..."""
        return self._run(calls.job_epochs(job_id))

    def job_logs(self, job_id: int, *, after: int = 0, limit: int = 1000) -> list[JobLogLine]:
        return self._run(calls.job_logs(job_id, after, limit))

    def cancel_job(self, job_id: int) -> Job:
        return self._run(calls.cancel_job(job_id))

    def resume_job(self, job_id: int) -> Job:
        return self._run(calls.resume_job(job_id))

    # -- API keys (an admin key's calls) ---------------------------------------------------

    def create_key(
        self,
        name: str,
        scopes: Sequence[str],
        *,
        models: Sequence[str] | None = None,
        rate_per_s: float | None = None,
    ) -> CreatedKey:
        """A new key with ``scopes`` (admin, deploy, train, predict, read), limited to
        ``models`` when given and to ``rate_per_s`` requests a second; its ``token`` is in
        this answer only."""
        return self._run(calls.create_key(name, scopes, models, rate_per_s))

    def list_keys(self, *, include_revoked: bool = False) -> list[ApiKey]:
        """Every key (the revoked too with ``include_revoked``), oldest first; no tokens."""
        return self._run(calls.list_keys(include_revoked))

    def revoke_key(self, key_id: str) -> ApiKey:
        """Revoke a key for good: this server refuses it at once, others at their next
        refresh."""
        return self._run(calls.revoke_key(key_id))

    # -- inference (KServe V2) -------------------------------------------------------------

    def live(self) -> bool:
        return self._run(calls.live())

    def ready(self) -> bool:
        """Whether the server is ready (False while it is not: a 503)."""
        return self._run(calls.ready())

    def model_ready(self, name: str, ref: Ref | None = None) -> bool:
        return self._run(calls.model_ready(name, ref))

    def model_metadata(self, name: str, ref: Ref | None = None) -> dict[str, Any]:
        return self._run(calls.model_metadata(name, ref))

    def infer(
        self,
        name: str,
        inputs: Mapping[str, np.ndarray],
        *,
        version: Ref | None = None,
        outputs: Sequence[str] | None = None,
        binary: bool = True,
        timeout_us: int | None = None,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> InferResult:
        """Run the model on numpy ``inputs`` (datatypes from their dtypes).

        Without ``version`` the default route answers (its traffic policy applies;
        ``headers`` can carry its sticky header). ``binary`` sends and receives raw
        tensors; ``outputs`` limits the answer to those names; ``timeout_us`` bounds the
        server-side queue wait (``DeadlineExceededError`` past it).
        """
        return self._run(
            calls.infer(
                name,
                inputs,
                version=version,
                outputs=outputs,
                binary=binary,
                timeout_us=timeout_us,
                request_id=request_id,
                headers=headers,
            )
        )
