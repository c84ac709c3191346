"""A real maas server on free loopback ports, in a background thread of this process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn

from maas.config import Settings
from maas.registry.service import Registry
from maas.serving.app import build_app
from maas.serving.ports import grpc_holder, rest_socket
from maas.serving.server import server_config

__all__ = ["Endpoints", "running_server", "serving_endpoints"]


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where a test server answers: REST base URL and gRPC ``host:port``."""

    http_url: str
    grpc_address: str


def _grpc_holder() -> socket.socket:
    for _ in range(5):  # None only where a fresh port has TIME_WAIT leftovers: try another
        holder = grpc_holder("127.0.0.1", 0)
        if holder is not None:
            return holder
    raise RuntimeError("no free loopback port for gRPC")


@contextmanager
def serving_endpoints(settings: Settings, registry: Registry | None = None) -> Iterator[Endpoints]:
    """Serve ``settings``' registry over REST and gRPC on 127.0.0.1; stop on exit.

    Both ports are held before the server starts, as ``maas serve`` holds them
    (``maas.serving.ports``), so there is no race for them: the REST socket is handed to
    uvicorn, and a holder socket keeps the gRPC port (grpc binds it too, with
    SO_REUSEPORT; only listening sockets take connections). uvicorn runs as ``maas serve``
    runs it, under ``settings``' connection limits (``maas.serving.http_limits``).
    """
    sock = rest_socket("127.0.0.1", 0)
    holder = _grpc_holder()
    port, grpc_port = sock.getsockname()[1], holder.getsockname()[1]
    update = {"host": "127.0.0.1", "port": port, "grpc_port": grpc_port}
    served = settings.model_copy(update=update)
    app = build_app(served, registry)
    server = uvicorn.Server(server_config(app, served, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        yield Endpoints(f"http://127.0.0.1:{port}", f"127.0.0.1:{grpc_port}")
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        holder.close()


@contextmanager
def running_server(settings: Settings, registry: Registry | None = None) -> Iterator[str]:
    """Serve ``settings``' registry on 127.0.0.1 and yield the REST base URL; stop on exit."""
    with serving_endpoints(settings, registry) as endpoints:
        yield endpoints.http_url
