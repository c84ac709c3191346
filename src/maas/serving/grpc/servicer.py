"""The KServe V2 ``GRPCInferenceService``: each RPC converts, calls the data plane (or
the model repository), converts.

RPCs maas does not offer (shared memory, trace, log settings) keep the generated base
class's answer, UNIMPLEMENTED.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from tritonclient.grpc import service_pb2, service_pb2_grpc

from maas.errors import InvalidInputError
from maas.serving.dataplane import DataPlane
from maas.serving.grpc import converters
from maas.serving.grpc.errors import grpc_status
from maas.serving.repository import ModelRepository

__all__ = ["InferenceServicer"]

_Self = TypeVar("_Self")
_Handler = Callable[[_Self, Any, Any], Awaitable[Any]]
_DONE = object()


def _unary(handler: _Handler[_Self]) -> _Handler[_Self]:
    """Answer a unary RPC's errors with the status of the error table."""

    @functools.wraps(handler)
    async def wrapper(self: _Self, request: Any, context: Any) -> Any:
        try:
            return await handler(self, request, context)
        except Exception as exc:
            await context.abort(*grpc_status(exc))

    return wrapper


class InferenceServicer(service_pb2_grpc.GRPCInferenceServiceServicer):  # type: ignore[misc]  # generated base is untyped
    """Thin gRPC adapter over a ``DataPlane``."""

    def __init__(self, dataplane: DataPlane, repository: ModelRepository) -> None:
        self._dataplane = dataplane
        self._repository = repository

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
        """Answer every request of the stream, concurrently; an error ends only its request."""
        answers: asyncio.Queue[Any] = asyncio.Queue()

        async def answer(request: Any) -> None:
            try:
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
        name, version = message.model_name, message.model_version or None
        header = self._dataplane.routing_header(name)
        route = await self._dataplane.route(name, version, _metadata(context, header))
        request = converters.infer_request_from_proto(message)
        response = await self._dataplane.infer(route, request)
        return converters.infer_response_to_proto(response)


def _metadata(context: Any, key: str | None) -> bytes | None:
    """The value of invocation metadata ``key`` (the traffic policy's sticky header)."""
    if key is None:
        return None
    for name, value in context.invocation_metadata() or ():
        if name == key:
            return value if isinstance(value, bytes) else str(value).encode()
    return None


def _actor(context: Any) -> str:
    """Who the audit log records for a management call over gRPC."""
    return f"grpc:{context.peer()}"
