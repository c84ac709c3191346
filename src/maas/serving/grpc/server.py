"""The gRPC server: a ``grpc.aio`` server carrying the V2 inference service."""

from __future__ import annotations

from pathlib import Path

import grpc  # type: ignore[import-untyped]  # grpcio ships no type stubs
import grpc.aio  # type: ignore[import-untyped]  # grpcio ships no type stubs
from tritonclient.grpc import service_pb2_grpc

from maas.errors import UnavailableError
from maas.serving.access import Gatekeeper
from maas.serving.dataplane import DataPlane
from maas.serving.grpc.servicer import InferenceServicer
from maas.serving.repository import ModelRepository

__all__ = ["GrpcServer"]


class GrpcServer:
    """Serves ``dataplane`` over KServe V2 gRPC on ``host:port`` (port 0: a free one).

    SO_REUSEPORT stays on (grpc's default on Linux), so worker processes can share a port.

    >>> server = GrpcServer(dataplane, "127.0.0.1", 0, 64 * 1024 * 1024)  # doctest: +SKIP
    >>> await server.start(); server.port  # doctest: +SKIP
    """

    def __init__(
        self,
        dataplane: DataPlane,
        repository: ModelRepository,
        gatekeeper: Gatekeeper,
        host: str,
        port: int,
        max_message_bytes: int,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self._dataplane = dataplane
        self._repository = repository
        self._gatekeeper = gatekeeper
        self._address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._max_message_bytes = max_message_bytes
        self._tls = tls
        self._server: grpc.aio.Server | None = None
        self.port = port

    async def start(self) -> None:
        """Bind and start serving; ``port`` then holds the bound port."""
        server = grpc.aio.server(
            options=[
                ("grpc.max_send_message_length", self._max_message_bytes),
                ("grpc.max_receive_message_length", self._max_message_bytes),
            ]
        )
        service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
            InferenceServicer(self._dataplane, self._repository, self._gatekeeper), server
        )
        try:
            if self._tls is None:
                port = server.add_insecure_port(self._address)
            else:
                cert, key = (path.read_bytes() for path in self._tls)
                credentials = grpc.ssl_server_credentials([(key, cert)])
                port = server.add_secure_port(self._address, credentials)
        except (RuntimeError, OSError) as exc:
            raise UnavailableError(f"gRPC cannot bind {self._address}: {exc}") from None
        if not port:
            raise UnavailableError(f"gRPC cannot bind {self._address}")
        await server.start()
        self._server, self.port = server, port

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop taking RPCs; those under way get ``grace_s`` seconds to finish."""
        if self._server is not None:
            await self._server.stop(grace_s)
            self._server = None
