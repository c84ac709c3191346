"""KServe V2 over gRPC (grpc.aio): the only package that imports grpc or protobuf."""

from __future__ import annotations

from maas.serving.grpc.server import GrpcServer

__all__ = ["GrpcServer"]
