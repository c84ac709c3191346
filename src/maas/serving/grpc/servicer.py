"""The KServe V2 ``GRPCInferenceService``: each RPC converts, calls the data plane, converts.

RPCs maas does not offer (repository, shared memory, trace, log settings) keep the
generated base class's answer, UNIMPLEMENTED.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from tritonclient.grpc import service_pb2, service_pb2_grpc

from maas.serving.dataplane import DataPlane
from maas.serving.grpc import converters
from maas.serving.grpc.errors import grpc_status

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

    def __init__(self, dataplane: DataPlane) -> None:
        self._dataplane = dataplane

    @_unary
    async def ServerLive(self, request: Any, context: Any) -> Any:
        return service_pb2.ServerLiveResponse(live=self._dataplane.live())

    @_unary
    async def ServerReady(self, request: Any, context: Any) -> Any:
        return service_pb2.ServerReadyResponse(ready=self._dataplane.ready())

    @_unary
    async def ModelReady(self, request: Any, context: Any) -> Any:
        ready = await self._dataplane.model_ready(request.name, request.version or None)
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
        return await self._infer(request)

    async def ModelStreamInfer(self, requests: AsyncIterator[Any], context: Any) -> Any:
        """Answer every request of the stream, concurrently; an error ends only its request."""
        answers: asyncio.Queue[Any] = asyncio.Queue()

        async def answer(request: Any) -> None:
            try:
                reply = service_pb2.ModelStreamInferResponse(
                    infer_response=await self._infer(request)
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

    async def _infer(self, message: Any) -> Any:
        name, version, request = converters.infer_request_from_proto(message)
        response = await self._dataplane.infer(name, version, request)
        return converters.infer_response_to_proto(response)
