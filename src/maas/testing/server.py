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

__all__ = ["Endpoints", "running_server", "serving_endpoints"]


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where a test server answers: REST base URL and gRPC ``host:port``."""

    http_url: str
    grpc_address: str


def _bound_socket(reuse_port: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serving_endpoints(settings: Settings, registry: Registry | None = None) -> Iterator[Endpoints]:
    """Serve ``settings``' registry over REST and gRPC on 127.0.0.1; stop on exit.

    Both ports are bound before the server starts, so there is no race for them: the
    REST socket is handed to uvicorn, and a placeholder socket holds the gRPC port
    (grpc binds it too, with SO_REUSEPORT; only listening sockets take connections).
    """
    sock = _bound_socket(reuse_port=False)
    grpc_holder = _bound_socket(reuse_port=True)
    port, grpc_port = sock.getsockname()[1], grpc_holder.getsockname()[1]
    update = {"host": "127.0.0.1", "port": port, "grpc_port": grpc_port}
    app = build_app(settings.model_copy(update=update), registry)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
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
        grpc_holder.close()


@contextmanager
def running_server(settings: Settings, registry: Registry | None = None) -> Iterator[str]:
    """Serve ``settings``' registry on 127.0.0.1 and yield the REST base URL; stop on exit."""
    with serving_endpoints(settings, registry) as endpoints:
        yield endpoints.http_url
