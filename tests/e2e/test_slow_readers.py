"""Clients that never read their response, against a real ``maas serve``: dropped after
the write timeout, and the memory their responses held goes back (the server's own RSS)."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest

from maas.control.uploads import register_upload
from maas.registry import Registry
from maas.store import LocalStore
from maas.testing.models import write_identity_model
from maas.testing.processes import ServerProcess, serve_process

pytestmark = pytest.mark.e2e

WIDTH = 4 * 1024 * 1024  # one row of FP32: a 16 MiB request and a 16 MiB response
WRITE_TIMEOUT_S = 1.0
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("home")
    registry = Registry(f"sqlite:///{home}/maas.db", LocalStore(home / "artifacts"))
    registry.upgrade()
    try:
        model = write_identity_model(home / "wide.onnx", "FP32", width=WIDTH)
        register_upload(registry, "wide", model, actor="t")
    finally:
        registry.close()
    environment = {"MAAS_WRITE_TIMEOUT_S": str(WRITE_TIMEOUT_S)}
    with serve_process(home, environment=environment) as served:
        yield served


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _body() -> tuple[bytes, int]:
    """A binary-tensor request body and the length of its JSON header."""
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": "FP32",
                    "shape": [1, WIDTH],
                    "parameters": {"binary_data_size": WIDTH * 4},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    )
    return header + np.ones(WIDTH, np.float32).tobytes(), len(header)


def _request(body: bytes, header_length: int) -> bytes:
    return (
        b"POST /v2/models/wide/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Inference-Header-Content-Length: %d\r\nContent-Length: %d\r\n\r\n"
        % (header_length, len(body))
        + body
    )


@contextlib.contextmanager
def _non_reader(server: ServerProcess, request: bytes) -> Iterator[socket.socket]:
    """A connection that sends ``request`` and reads nothing (a small receive window)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    host, port = server.http.split(":")
    sock.connect((host, int(port)))
    try:
        sock.sendall(request)
        yield sock
    finally:
        sock.close()


def test_clients_that_never_read_are_dropped_and_their_memory_freed(
    server: ServerProcess,
) -> None:
    body, header_length = _body()
    request = _request(body, header_length)
    with httpx.Client(base_url=server.url, timeout=30) as client:  # one full read: warm
        reply = client.post(
            "/v2/models/wide/infer",
            content=body,
            headers={
                "Content-Type": "application/octet-stream",
                "Inference-Header-Content-Length": str(header_length),
            },
        )
        assert reply.status_code == 200
        assert len(reply.content) > WIDTH * 4
    baseline = _rss_bytes(server.pid)
    with contextlib.ExitStack() as stack:
        readers = [stack.enter_context(_non_reader(server, request)) for _ in range(3)]
        peak = baseline
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the three responses buffered, then dropped
            peak = max(peak, _rss_bytes(server.pid))
            if peak - baseline > 24 * MIB and _rss_bytes(server.pid) - baseline < 12 * MIB:
                break
            time.sleep(0.05)
        assert peak - baseline > 24 * MIB, "the responses were never buffered"
        assert _rss_bytes(server.pid) - baseline < 12 * MIB, "buffered responses were kept"
        for sock in readers:  # each was dropped: a part of its response, then the end
            sock.settimeout(5)
            received = 0
            with contextlib.suppress(ConnectionResetError):
                while chunk := sock.recv(MIB):
                    received += len(chunk)
            assert received < WIDTH * 4
    assert httpx.get(f"{server.url}/v2/health/live", timeout=5).status_code == 200
