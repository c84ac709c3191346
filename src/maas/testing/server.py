"""A real maas server on a free loopback port, in a background thread of this process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from maas.config import Settings
from maas.registry.service import Registry
from maas.serving.app import build_app

__all__ = ["running_server"]


@contextmanager
def running_server(settings: Settings, registry: Registry | None = None) -> Iterator[str]:
    """Serve ``settings``' registry on 127.0.0.1 and yield the base URL; stop on exit.

    The socket is bound before uvicorn starts, so there is no race for the port.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = build_app(settings.model_copy(update={"host": "127.0.0.1", "port": port}), registry)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
