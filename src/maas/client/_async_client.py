"""``AsyncClient``: ``Client``'s methods as coroutines, over ``httpx.AsyncClient``.

The calls are the same descriptions (``_calls``); only the executor differs. Downloads
write their chunks to the local file from the event loop (small, buffered writes).
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

__all__ = ["AsyncClient"]

T = TypeVar("T")
Ref = int | str


class AsyncClient:
    """``Client`` for asyncio: the same constructor (with an ``httpx.AsyncBaseTransport``)
    and methods, awaited; ``async with``, ``aclose()``.

    >>> async with AsyncClient("http://127.0.0.1:8080") as maas:  # doctest: +SKIP
    ...     result = await maas.infer("iris", {"input": x})
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        registry_id: str | None = None,
        verify: bool | str | ssl.SSLContext = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._registry_id = registry_id
        self._verified = registry_id is None
        self._http = httpx.AsyncClient(
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
        return f"AsyncClient({self._base_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- the executor ----------------------------------------------------------------------

    async def _run(self, plan: Call[T] | Plan[T]) -> T:
        if not self._verified and self._registry_id is not None:
            await self._send(calls.check_registry(self._base_url, self._registry_id))
            self._verified = True  # once per client; a failed check is tried again
        if isinstance(plan, Call):
            return await self._send(plan)
        try:
            call = next(plan)
            while True:
                call = plan.send(await self._send(call))
        except StopIteration as done:
            result: T = done.value
            return result
        finally:
            plan.close()

    async def _send(self, call: Call[T]) -> T:
        request = build_request(self._http, call)
        try:
            response = await self._http.send(request, stream=True)
            try:
                if call.sink is not None and response.is_success:
                    with call.sink.writing() as write:
                        async for chunk in response.aiter_bytes():
                            write(chunk)
                else:
                    await response.aread()
            finally:
                await response.aclose()
        except httpx.TransportError as exc:
            raise transport_error(self._base_url, request, exc) from exc
        return finish(self._base_url, call, response)

    # -- the registry, models and versions -------------------------------------------------

    async def registry(self) -> RegistryInfo:
        """Which registry the server serves, and its maas version."""
        return await self._run(calls.registry())

    async def list_models(self) -> list[Model]:
        return await self._run(calls.list_models())

    async def get_model(self, name: str) -> Model:
        return await self._run(calls.get_model(name))

    async def list_versions(self, name: str, *, include_archived: bool = False) -> list[Version]:
        return await self._run(calls.list_versions(name, include_archived))

    async def get_version(self, name: str, ref: Ref | None = None) -> Version:
        """A version by number or alias; None: the default (production, else the newest)."""
        return await self._run(calls.get_version(name, ref))

    async def upload(
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
        return await self._run(call)

    async def archive(self, name: str, ref: Ref, *, reason: str = "") -> Version:
        """Take a version out of service (refused while an alias or the traffic names it)."""
        return await self._run(calls.archive(name, ref, reason))

    async def download(
        self, name: str, ref: Ref | None, destination: Path, *, format: str | None = None
    ) -> Path:
        """Stream an artifact (the served format unless ``format``) to ``destination``, or
        into it as ``NAME-VERSION.onnx`` (``.pt``, ``.FORMAT``) when it is a folder; its
        sha256 is checked before the file appears. Returns the file's path."""
        return await self._run(calls.download(name, ref, Path(destination), format))

    async def get_config(self, name: str, ref: Ref) -> ServingConfig:
        return await self._run(calls.get_config(name, ref))

    async def set_config(self, name: str, ref: Ref, config: dict[str, Any]) -> ServingConfig:
        """Store a new revision of a version's serving config (validated by the server)."""
        return await self._run(calls.set_config(name, ref, config))

    async def get_gate(self, name: str) -> list[dict[str, Any]]:
        return await self._run(calls.get_gate(name))

    async def set_gate(self, name: str, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rules a version must pass to become production; ``[]`` removes the gate."""
        return await self._run(calls.set_gate(name, rules))

    async def record_evaluation(self, name: str, ref: Ref, details: dict[str, Any]) -> AuditEvent:
        return await self._run(calls.record_evaluation(name, ref, details))

    async def get_reference(self, name: str, ref: Ref) -> InputReference:
        """The version's input reference (``NotFoundError`` when it has none)."""
        return await self._run(calls.get_reference(name, ref))

    async def set_reference(self, name: str, ref: Ref, reference: dict[str, Any]) -> InputReference:
        """Set or replace the version's input reference: a document as
        ``maas.monitoring.drift.Reference.build(...).to_dict()`` makes it."""
        return await self._run(calls.set_reference(name, ref, reference))

    async def drift(self, name: str) -> Drift:
        """Input drift of the model's loaded versions on this server."""
        return await self._run(calls.drift(name))

    # -- aliases and promotion -------------------------------------------------------------

    async def list_aliases(self, name: str) -> list[Alias]:
        return await self._run(calls.list_aliases(name))

    async def set_alias(
        self, name: str, alias: str, ref: Ref, *, force: bool = False, reason: str = ""
    ) -> Alias:
        """Point ``alias`` at a version (a number, or another alias to copy); answers
        once the version is warm, or raises ``GateFailedError``/``NotServableError``."""
        return await self._run(calls.set_alias(name, alias, ref, force, reason))

    async def delete_alias(self, name: str, alias: str) -> None:
        return await self._run(calls.delete_alias(name, alias))

    async def alias_history(self, name: str, alias: str) -> list[AliasMove]:
        """Every move of an alias, oldest first."""
        return await self._run(calls.alias_history(name, alias))

    async def promote(
        self,
        name: str,
        ref: Ref,
        *,
        alias: str = "production",
        force: bool = False,
        reason: str = "",
    ) -> Alias:
        """Move ``alias`` (production) to a version past the gate; ``force`` needs a reason."""
        return await self._run(calls.promote(name, ref, alias, force, reason))

    async def rollback(self, name: str, *, alias: str = "production") -> Alias:
        """Move ``alias`` back to where it pointed before (one step per call)."""
        return await self._run(calls.rollback(name, alias))

    # -- traffic and deployments -----------------------------------------------------------

    async def get_traffic(self, name: str) -> Traffic:
        return await self._run(calls.get_traffic(name))

    async def set_traffic(self, name: str, policy: dict[str, Any]) -> Traffic:
        """Store a traffic policy: ``{"split": [{"target", "weight"}], "sticky_header",
        "shadow": {"target", "fraction"}}``; every target is warmed first."""
        return await self._run(calls.set_traffic(name, policy))

    async def clear_traffic(self, name: str) -> None:
        return await self._run(calls.clear_traffic(name))

    async def deployments(self, model: str | None = None) -> list[Deployment]:
        """What the answering server holds, loads or failed to load."""
        return await self._run(calls.deployments(model))

    async def load(self, name: str) -> DeploymentState:
        """Serve the model (again); answers once its default version is warm."""
        return await self._run(calls.load(name))

    async def unload(self, name: str) -> DeploymentState:
        return await self._run(calls.unload(name))

    async def repository_index(self, *, ready_only: bool = False) -> list[RepositoryEntry]:
        return await self._run(calls.repository_index(ready_only))

    async def audit(
        self,
        model: str | None = None,
        *,
        action: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[AuditEvent]:
        """The audit log, newest first; ``action`` is a kind (alias.set) or a family
        (alias); ``before`` an event id, to page back."""
        return await self._run(calls.audit(model, action, limit, before))

    async def alerts(self) -> Alerts:
        """The server's alerts: pending and firing now, resolved lately, and its rules."""
        return await self._run(calls.alerts())

    # -- jobs ------------------------------------------------------------------------------

    async def submit_job(self, spec: dict[str, Any]) -> Job:
        """Queue a job (its ``kind``: train, the default, or quantize, prune, distill); the
        server validates the spec in full first."""
        return await self._run(calls.submit_job(spec))

    async def get_job(self, job_id: int) -> Job:
        return await self._run(calls.get_job(job_id))

    async def list_jobs(self, *, state: str | None = None, limit: int = 100) -> list[Job]:
        return await self._run(calls.list_jobs(state, limit))

    async def job_epochs(self, job_id: int) -> list[dict[str, Any]]:
        """One entry per finished epoch: epoch, train_loss, val_loss, val_accuracy, ..."""
        return await self._run(calls.job_epochs(job_id))

    async def job_logs(self, job_id: int, *, after: int = 0, limit: int = 1000) -> list[JobLogLine]:
        return await self._run(calls.job_logs(job_id, after, limit))

    async def cancel_job(self, job_id: int) -> Job:
        return await self._run(calls.cancel_job(job_id))

    async def resume_job(self, job_id: int) -> Job:
        return await self._run(calls.resume_job(job_id))

    # -- API keys (an admin key's calls) ---------------------------------------------------

    async def create_key(
        self,
        name: str,
        scopes: Sequence[str],
        *,
        models: Sequence[str] | None = None,
        rate_per_s: float | None = None,
    ) -> CreatedKey:
        """A new key; its ``token`` is in this answer only."""
        return await self._run(calls.create_key(name, scopes, models, rate_per_s))

    async def list_keys(self, *, include_revoked: bool = False) -> list[ApiKey]:
        return await self._run(calls.list_keys(include_revoked))

    async def revoke_key(self, key_id: str) -> ApiKey:
        return await self._run(calls.revoke_key(key_id))

    # -- inference (KServe V2) -------------------------------------------------------------

    async def live(self) -> bool:
        return await self._run(calls.live())

    async def ready(self) -> bool:
        """Whether the server is ready (False while it is not: a 503)."""
        return await self._run(calls.ready())

    async def model_ready(self, name: str, ref: Ref | None = None) -> bool:
        return await self._run(calls.model_ready(name, ref))

    async def model_metadata(self, name: str, ref: Ref | None = None) -> dict[str, Any]:
        return await self._run(calls.model_metadata(name, ref))

    async def infer(
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
        return await self._run(
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
