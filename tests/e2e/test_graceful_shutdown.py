"""SIGTERM on a real ``maas serve``: unready at once, serving through the grace period,
then the port closes, the request in flight finishes, and the process exits 0."""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest
import tritonclient.grpc as triton_grpc

from maas.control.uploads import register_upload
from maas.registry import Registry
from maas.store import LocalStore
from maas.testing.models import write_linear_model
from maas.testing.processes import serve_process

pytestmark = pytest.mark.e2e

GRACE_S = 1.5
BODY = orjson.dumps(
    {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}
)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    registry = Registry(f"sqlite:///{home}/maas.db", LocalStore(home / "artifacts"))
    registry.upgrade()
    try:
        register_upload(registry, "lin", write_linear_model(home / "m.onnx"), actor="t")
    finally:
        registry.close()
    return home


def _poll_readiness(url: str, stop: threading.Event, seen: list[tuple[float, str]]) -> None:
    """Ask for readiness on a new connection every 50 ms, as a load balancer would."""
    while not stop.is_set():
        try:
            state = str(httpx.get(f"{url}/v2/health/ready", timeout=2).status_code)
        except httpx.ConnectError:
            state = "refused"
        except httpx.TransportError:
            state = "error"  # accepted just as the listener closed
        seen.append((time.monotonic(), state))
        time.sleep(0.05)


def _read_to_close(sock: socket.socket, timeout_s: float) -> bytes:
    sock.settimeout(timeout_s)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_drains_before_the_process_exits_0(
    home: Path, tmp_path: Path, workers: int
) -> None:
    log = (tmp_path / "server.log").open("wb")
    environment = {"MAAS_SHUTDOWN_GRACE_S": str(GRACE_S)}
    with log, serve_process(home, workers=workers, output=log, environment=environment) as server:
        assert server.process is not None
        host, port = server.http.split(":")
        # A request in flight: its head and part of its body sent, the rest held back.
        slow = socket.create_connection((host, int(port)), timeout=10)
        slow.sendall(
            b"POST /v2/models/lin/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY[:20]
        )
        seen: list[tuple[float, str]] = []
        stop = threading.Event()
        poller = threading.Thread(target=_poll_readiness, args=(server.url, stop, seen))
        poller.start()
        try:
            time.sleep(0.5)
            sigterm_at = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            while not any(state == "503" for _, state in seen):
                assert time.monotonic() < sigterm_at + 5, "readiness never turned 503"
                time.sleep(0.01)
            grpc_client = triton_grpc.InferenceServerClient(server.grpc)
            try:
                grpc_ready = grpc_client.is_server_ready()  # during the grace period
            finally:
                grpc_client.close()
            deadline = sigterm_at + GRACE_S + 15
            while not any(state in ("refused", "error") for _, state in seen):
                assert time.monotonic() < deadline, "the port never closed"
                time.sleep(0.05)
            slow.sendall(BODY[20:])  # the port is closed; the request in flight goes on
            answer = _read_to_close(slow, 15)
        finally:
            stop.set()
            poller.join()
            slow.close()
        status = server.process.wait(timeout=30)

    assert grpc_ready is False
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert b'"model_name":"lin"' in answer
    assert status == 0
    before = [state for at, state in seen if at < sigterm_at]
    assert before and set(before) == {"200"}
    after = [(at - sigterm_at, state) for at, state in seen if at >= sigterm_at]
    first_503 = next(at for at, state in after if state == "503")
    first_closed = next(at for at, state in after if state in ("refused", "error"))
    assert first_503 < 1.0  # unready at once (the supervisor passes the signal on within 0.5 s)
    assert first_503 < first_closed
    assert first_closed >= 0.9 * GRACE_S  # accepting through the grace period
    assert all(state == "503" for at, state in after if first_503 < at < first_closed)
    assert all(state in ("refused", "error") for at, state in after if at > first_closed)
