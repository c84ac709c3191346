"""Where the CLI's job commands go: a running server's jobs API, or the registry directly.

``job_client()`` picks: the server named by ``--server``; else the server of this
configuration if one answers (its runner then runs the job, within its concurrency);
else the registry database itself, with each submitted or resumed job run by a worker
process started here that outlives this command. Both clients return the API's JSON
shapes, so the commands do not care which they got.
"""

from __future__ import annotations

from typing import Any, Final, Protocol

import httpx

from maas.cli.console import settings
from maas.cli.identity import actor
from maas.errors import ConflictError, InvalidInputError, MaasError, NotFoundError, UnavailableError
from maas.registry.service import Registry

__all__ = ["HttpJobClient", "JobClient", "LocalJobClient", "job_client"]

_PROBE_TIMEOUT_S: Final = 0.5
_ERRORS: Final[dict[int, type[MaasError]]] = {
    400: InvalidInputError,
    404: NotFoundError,
    409: ConflictError,
    503: UnavailableError,
}


class JobClient(Protocol):
    where: str

    def submit(self, document: dict[str, Any]) -> dict[str, Any]: ...
    def get(self, job_id: int) -> dict[str, Any]: ...
    def list_jobs(self, state: str | None, limit: int) -> list[dict[str, Any]]: ...
    def epochs(self, job_id: int) -> list[dict[str, Any]]: ...
    def logs(self, job_id: int, after: int) -> list[dict[str, Any]]: ...
    def cancel(self, job_id: int) -> dict[str, Any]: ...
    def resume(self, job_id: int) -> dict[str, Any]: ...
    def close(self) -> None: ...


class HttpJobClient:
    """The jobs API of a running server; its error replies become the same maas errors."""

    def __init__(self, base_url: str) -> None:
        self.where = f"the server at {base_url}"
        self._http = httpx.Client(base_url=base_url, timeout=330.0)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, "/api/jobs" + path, **kwargs)
        except httpx.HTTPError as error:
            raise UnavailableError(f"cannot reach {self.where}: {error}") from None
        if response.is_success:
            return response.json()
        try:
            body = response.json()
            message, details = str(body["error"]), body.get("details") or {}
        except (ValueError, KeyError, TypeError):
            message, details = f"{response.status_code}: {response.text[:200]}", {}
        raise _ERRORS.get(response.status_code, MaasError)(message, details)

    def submit(self, document: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "", json=document)
        return result

    def get(self, job_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/{job_id}")
        return result

    def list_jobs(self, state: str | None, limit: int) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit} | ({"state": state} if state else {})
        result: list[dict[str, Any]] = self._call("GET", "", params=params)
        return result

    def epochs(self, job_id: int) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", f"/{job_id}/metrics")["epochs"]
        return result

    def logs(self, job_id: int, after: int) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call(
            "GET", f"/{job_id}/logs", params={"after": after}
        )["lines"]
        return result

    def cancel(self, job_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/{job_id}/cancel")
        return result

    def resume(self, job_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/{job_id}/resume")
        return result

    def close(self) -> None:
        self._http.close()


class LocalJobClient:
    """The registry database directly; submitted and resumed jobs get a worker started here."""

    def __init__(self) -> None:
        self._settings = settings()
        self.where = f"the registry at {self._settings.resolved_database_url}"
        self._registry = Registry.from_settings(self._settings)
        self._jobs = self._registry.jobs

    def _start_worker(self, job_id: int) -> None:
        from maas.jobs.runner import spawn_worker

        spawn_worker(job_id, self._settings, parent=None, claim=True)

    def submit(self, document: dict[str, Any]) -> dict[str, Any]:
        from maas.jobs.submission import submit_job

        job = submit_job(self._registry, document, actor=actor())
        self._start_worker(job.id)
        return job.to_dict()

    def get(self, job_id: int) -> dict[str, Any]:
        return self._jobs.get(job_id).to_dict()

    def list_jobs(self, state: str | None, limit: int) -> list[dict[str, Any]]:
        return [job.to_dict() for job in self._jobs.list_jobs(state=state, limit=limit)]

    def epochs(self, job_id: int) -> list[dict[str, Any]]:
        return self._jobs.epochs(job_id)

    def logs(self, job_id: int, after: int) -> list[dict[str, Any]]:
        return [line.to_dict() for line in self._jobs.logs(job_id, after=after)]

    def cancel(self, job_id: int) -> dict[str, Any]:
        return self._jobs.cancel(job_id, actor=actor()).to_dict()

    def resume(self, job_id: int) -> dict[str, Any]:
        job = self._jobs.resume(job_id, actor=actor())
        self._start_worker(job.id)
        return job.to_dict()

    def close(self) -> None:
        self._registry.close()


def _server_answers(base_url: str) -> bool:
    try:
        reply = httpx.get(f"{base_url}/api/jobs", params={"limit": 1}, timeout=_PROBE_TIMEOUT_S)
        return reply.is_success
    except httpx.HTTPError:
        return False


def job_client(server: str | None) -> JobClient:
    """``server`` if given, else this configuration's server if it answers, else local."""
    if server:
        return HttpJobClient(server.rstrip("/"))
    base_url = settings().base_url
    if _server_answers(base_url):
        return HttpJobClient(base_url)
    return LocalJobClient()
