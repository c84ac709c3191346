"""A port in use is refused before anything is loaded or announced (``maas.serving.ports``).

gRPC listens with SO_REUSEPORT, so without the check a second ``maas serve`` would share
a running server's gRPC port and the kernel would split calls between them; and a taken
REST port used to fail only after "serving on ..." was printed. Only ``--workers N``'s
own processes may share a port.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from maas.control.uploads import register_upload
from maas.registry import Registry
from maas.store import LocalStore
from maas.testing.models import write_linear_model
from maas.testing.processes import ServerProcess, free_port, serve_process

pytestmark = pytest.mark.e2e

MAAS = Path(sys.executable).parent / "maas"
REFUSED_WITHIN_S = 20.0
BODY = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}


def _grpc_message(port: int) -> str:
    return (
        f"error: port {port} (gRPC) on 127.0.0.1 is in use by another process; "
        "choose another with --grpc-port or MAAS_GRPC_PORT"
    )


def _rest_message(port: int) -> str:
    return (
        f"error: port {port} (REST) on 127.0.0.1 is in use by another process; "
        "choose another with --port or MAAS_PORT"
    )


def _serve(home: Path, port: int, grpc_port: int, *flags: str) -> subprocess.CompletedProcess[str]:
    """``maas serve`` expected to give up: its result, and how long it took to."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAAS_")}
    env |= {
        "MAAS_HOME": str(home),
        "MAAS_HOST": "127.0.0.1",
        "MAAS_PORT": str(port),
        "MAAS_GRPC_PORT": str(grpc_port),
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }
    home.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    result = subprocess.run(
        [str(MAAS), "serve", *flags],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert time.monotonic() - started < REFUSED_WITHIN_S, result
    return result


def _assert_refused(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 1, result
    assert result.stderr.strip().splitlines() == [message], result.stderr
    assert "serving on" not in result.stdout + result.stderr
    assert "Started server process" not in result.stdout + result.stderr


def _grpc_infer(address: str) -> str:
    """One inference on a fresh connection (the kernel picks a listener per connection)."""
    client: Any = grpcclient.InferenceServerClient(address)
    try:
        tensor = grpcclient.InferInput("input", [1, 4], "FP32")
        tensor.set_data_from_numpy(np.arange(1, 5, dtype=np.float32).reshape(1, 4))
        version: str = client.infer("lin", [tensor]).get_response().model_version
        return version
    finally:
        client.close()


def _answers_on_both_ports(server: ServerProcess, calls: int = 10) -> None:
    for _ in range(calls):
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert client.post("/v2/models/lin/infer", json=BODY).status_code == 200
        assert _grpc_infer(server.grpc) == "1"


def _home_with_a_model(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    registry = Registry(f"sqlite:///{home}/maas.db", LocalStore(home / "artifacts"))
    try:
        registry.upgrade()
        register_upload(registry, "lin", write_linear_model(home / "m.onnx"), actor="t")
    finally:
        registry.close()
    return home


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A running ``maas serve`` with one model, whose ports the tests try to take."""
    with serve_process(_home_with_a_model(tmp_path_factory.mktemp("first"))) as server:
        yield server


def test_a_second_serve_on_a_taken_grpc_port_is_refused(
    first: ServerProcess, tmp_path: Path
) -> None:
    home = tmp_path / "second"
    result = _serve(home, free_port(), _port(first.grpc))
    _assert_refused(result, _grpc_message(_port(first.grpc)))
    assert not (home / "maas.db").exists()  # refused before the registry was opened
    _answers_on_both_ports(first)


def test_a_second_serve_on_a_taken_rest_port_is_refused(
    first: ServerProcess, tmp_path: Path
) -> None:
    home = tmp_path / "second"
    result = _serve(home, _port(first.http), free_port())
    _assert_refused(result, _rest_message(_port(first.http)))
    assert not (home / "maas.db").exists()
    _answers_on_both_ports(first)


def _taken(kind: str) -> socket.socket:
    """A loopback port held by this test the way ``kind`` says."""
    sock = socket.socket()
    if kind in ("reuseport listener", "reuseport holder"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if kind == "reuseport listener":  # how grpc listens
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    if kind != "reuseport holder":  # the holder is how a maas still loading keeps gRPC
        sock.listen()
    return sock


@pytest.mark.parametrize("kind", ["listener", "reuseport listener", "reuseport holder"])
def test_a_grpc_port_held_by_another_socket_is_refused(tmp_path: Path, kind: str) -> None:
    with _taken(kind) as sock:
        port = int(sock.getsockname()[1])
        result = _serve(tmp_path / "home", free_port(), port)
    _assert_refused(result, _grpc_message(port))


@pytest.mark.parametrize("kind", ["listener", "reuseport listener"])
def test_a_rest_port_held_by_another_socket_is_refused(tmp_path: Path, kind: str) -> None:
    with _taken(kind) as sock:
        port = int(sock.getsockname()[1])
        result = _serve(tmp_path / "home", port, free_port())
    _assert_refused(result, _rest_message(port))


def test_the_same_port_for_rest_and_grpc_is_refused(tmp_path: Path) -> None:
    port = free_port()
    result = _serve(tmp_path / "home", port, port)
    assert result.returncode == 1, result
    assert result.stderr.strip().splitlines() == [
        f"error: port {port} is given to both REST and gRPC; "
        "choose another with --grpc-port or MAAS_GRPC_PORT"
    ]


def test_workers_share_their_ports_and_nobody_else_does(tmp_path: Path) -> None:
    with serve_process(_home_with_a_model(tmp_path / "home"), workers=2) as server:
        _answers_on_both_ports(server, calls=20)
        grpc_port = _port(server.grpc)
        refused = _serve(tmp_path / "other", free_port(), grpc_port, "--workers", "2")
        _assert_refused(refused, _grpc_message(grpc_port))
        _answers_on_both_ports(server)
