"""The KServe V2 ``GRPCInferenceService``: each RPC converts, calls the data plane (or
the model repository), converts.

Each RPC declares what it requires (``@_rpc(need, model)``), checked against the
``authorization: Bearer <key>`` metadata by the same ``Gatekeeper`` as REST; health RPCs
are open. RPCs maas does not offer (shared memory, trace, log settings) keep the generated
base class's answer, UNIMPLEMENTED, and need no key to say so.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any, Final, TypeVar

from tritonclient.grpc import service_pb2, service_pb2_grpc

from maas.control.access import OPEN, Principal, Reach, Requirement, Scope
from maas.errors import InvalidInputError
from maas.serving.access import Gatekeeper, Refusal, bearer_token
from maas.serving.dataplane import DataPlane
from maas.serving.grpc import converters
from maas.serving.grpc.errors import grpc_status
from maas.serving.repository import ModelRepository
from maas.serving.statistics import GRPC, SUCCESS, VersionMetrics, outcome_of

__all__ = ["REQUIREMENTS", "InferenceServicer"]

_Self = TypeVar("_Self")
_Handler = Callable[[_Self, Any, Any], Awaitable[Any]]
_DONE = object()


_CLIENT: Final = Requirement.any_of(Scope.PREDICT, Scope.READ)
_PREDICT: Final = Requirement.any_of(Scope.PREDICT)
_DEPLOY: Final = Requirement.any_of(Scope.DEPLOY)
_STREAM: Final = Requirement.any_of(Scope.PREDICT, reach=Reach.NONE)  # the models: per request

#: What each RPC requires, and where its request names the model (the test of the whole
#: table walks the service descriptor: every method maas answers is here).
REQUIREMENTS: Final[dict[str, Requirement]] = {
    "ServerLive": OPEN,
    "ServerReady": OPEN,
    "ServerMetadata": Requirement.any_of(Scope.PREDICT, Scope.READ, reach=Reach.NONE),
    "ModelReady": _CLIENT,
    "ModelMetadata": _CLIENT,
    "ModelConfig": _CLIENT,
    "ModelStatistics": _CLIENT,
    "ModelInfer": _PREDICT,
    "ModelStreamInfer": _PREDICT,
    "RepositoryIndex": Requirement.any_of(Scope.READ, reach=Reach.EVERY),
    "RepositoryModelLoad": _DEPLOY,
    "RepositoryModelUnload": _DEPLOY,
}


def _model_of(request: Any) -> str | None:
    """The model a request names (``name`` or ``model_name``; "" for none)."""
    for field in ("name", "model_name"):
        if hasattr(request, field):
            return getattr(request, field) or None
    return None


def _unary(handler: _Handler[_Self]) -> _Handler[_Self]:
    """Admit the caller as ``REQUIREMENTS`` says, then answer errors with the status of
    the error table."""
    method = handler.__name__
    need = REQUIREMENTS[method]

    @functools.wraps(handler)
    async def wrapper(self: _Self, request: Any, context: Any) -> Any:
        try:
            await _admit(self, method, need, _model_of(request), context)
            return await handler(self, request, context)
        except Exception as exc:
            await context.abort(*grpc_status(exc))

    return wrapper


_principal: ContextVar[Principal | None] = ContextVar("principal", default=None)


async def _admit(
    servicer: Any, method: str, need: Requirement, model: str | None, context: Any
) -> None:
    """Admit the caller (raising 401/403/429 as gRPC statuses); a management RPC's
    refusal goes to the audit log. The caller is the audit log's actor (``_actor``)."""
    gatekeeper: Gatekeeper = servicer._gatekeeper
    if need.is_open or not gatekeeper.keyring.enforcing:
        return
    refusal = Refusal("RPC", f"{method} {model or ''}".strip(), context.peer())
    principal = await gatekeeper.admit(
        bearer_token(_metadata(context, "authorization")),
        need,
        model,
        refusal if Scope.DEPLOY in need.scopes else None,
    )
    _principal.set(principal)


class InferenceServicer(service_pb2_grpc.GRPCInferenceServiceServicer):  # type: ignore[misc]  # generated base is untyped
    """Thin gRPC adapter over a ``DataPlane``."""

    def __init__(
        self, dataplane: DataPlane, repository: ModelRepository, gatekeeper: Gatekeeper
    ) -> None:
        self._dataplane = dataplane
        self._repository = repository
        self._gatekeeper = gatekeeper
        self._meter = dataplane.meter

    @_unary
    async def ServerLive(self, request: Any, context: Any) -> Any:
        return service_pb2.ServerLiveResponse(live=self._dataplane.live())

    @_unary
    async def ServerReady(self, request: Any, context: Any) -> Any:
        return service_pb2.ServerReadyResponse(ready=self._dataplane.ready())

    @_unary
    async def ModelReady(self, request: Any, context: Any) -> Any:
        ready, _ = await self._dataplane.model_ready(request.name, request.version or None)
        return service_pb2.ModelReadyResponse(ready=ready)

    @_unary
    async def ServerMetadata(self, request: Any, context: Any) -> Any:
        return converters.server_metadata_to_proto(self._dataplane.server_metadata())

    @_unary
    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        metadata = await self._dataplane.model_metadata(request.name, request.version or None)
        return converters.model_metadata_to_proto(metadata)

    @_unary
    async def ModelConfig(self, request: Any, context: Any) -> Any:
        config = await self._dataplane.model_config(request.name, request.version or None)
        return converters.model_config_to_proto(config)

    @_unary
    async def ModelStatistics(self, request: Any, context: Any) -> Any:
        statistics = await self._dataplane.model_statistics(
            request.name or None, request.version or None
        )
        return converters.model_statistics_to_proto(statistics)

    @_unary
    async def ModelInfer(self, request: Any, context: Any) -> Any:
        return await self._infer(request, context)

    @_unary
    async def RepositoryIndex(self, request: Any, context: Any) -> Any:
        models = await self._repository.index(ready_only=request.ready)
        return converters.repository_index_to_proto(models)

    @_unary
    async def RepositoryModelLoad(self, request: Any, context: Any) -> Any:
        if request.parameters:
            raise InvalidInputError(
                "load takes no parameters: maas loads registered versions (upload a new "
                "version to serve another file or config)"
            )
        await self._repository.load(request.model_name, actor=_actor(context))
        return service_pb2.RepositoryModelLoadResponse()

    @_unary
    async def RepositoryModelUnload(self, request: Any, context: Any) -> Any:
        await self._repository.unload(request.model_name, actor=_actor(context))
        return service_pb2.RepositoryModelUnloadResponse()

    async def ModelStreamInfer(self, requests: AsyncIterator[Any], context: Any) -> Any:
        """Answer every request of the stream, concurrently; an error ends only its request.

        The key is checked once, when the stream opens (a wrong one ends the stream with
        its status); a model-limited key is checked against each request's model."""
        try:
            principal = await self._gatekeeper.admit(
                bearer_token(_metadata(context, "authorization")), _STREAM, None
            )
        except Exception as exc:
            await context.abort(*grpc_status(exc))
        answers: asyncio.Queue[Any] = asyncio.Queue()

        async def answer(request: Any) -> None:
            try:
                if principal is not None:
                    principal.check(_PREDICT, request.model_name or None)
                reply = service_pb2.ModelStreamInferResponse(
                    infer_response=await self._infer(request, context)
                )
            except Exception as exc:
                reply = converters.infer_error_to_stream(request, grpc_status(exc)[1])
            answers.put_nowait(reply)

        async def read() -> None:
            try:
                async with asyncio.TaskGroup() as group:
                    async for request in requests:
                        group.create_task(answer(request))
            finally:
                answers.put_nowait(_DONE)

        reader = asyncio.create_task(read())
        try:
            while (reply := await answers.get()) is not _DONE:
                yield reply
            await reader  # re-raises a failure to read the stream
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _infer(self, message: Any, context: Any) -> Any:
        """One inference; with metrics on, its outcome and its time from here to the
        encoded answer go to the routed version's series (``statistics.RequestMeter``)."""
        meter = self._meter
        started_s = time.perf_counter() if meter is not None else 0.0
        measured: VersionMetrics | None = None  # the routed version's series
        try:
            name, version = message.model_name, message.model_version or None
            header = self._dataplane.routing_header(name)
            route = await self._dataplane.route(name, version, _metadata(context, header))
            measured = route[0].stats.metrics
            request = converters.infer_request_from_proto(message)
            response = await self._dataplane.infer(route, request)
            answer = converters.infer_response_to_proto(response)
        except BaseException as exc:
            if meter is not None:
                meter.record(measured, GRPC, outcome_of(exc), time.perf_counter() - started_s)
            raise
        if meter is not None:
            meter.record(measured, GRPC, SUCCESS, time.perf_counter() - started_s)
        return answer


def _metadata(context: Any, key: str | None) -> bytes | None:
    """The value of invocation metadata ``key`` (the traffic policy's sticky header)."""
    if key is None:
        return None
    for name, value in context.invocation_metadata() or ():
        if name == key:
            return value if isinstance(value, bytes) else str(value).encode()
    return None


def _actor(context: Any) -> str:
    """Who the audit log records for a management call over gRPC: the caller's key, or
    (a server without keys) its peer address."""
    principal = _principal.get()
    return principal.actor if principal is not None else f"grpc:{context.peer()}"
