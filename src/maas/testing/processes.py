"""Start, wait for and stop server processes in end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

__all__ = [
    "ServerProcess",
    "free_port",
    "free_ports",
    "serve_process",
    "stop_process",
    "wait_until_ready",
]


def free_port() -> int:
    """A loopback port that was free a moment ago (for a subprocess that binds it itself)."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` different loopback ports that were free a moment ago: all are held at
    once while picked, so two calls cannot hand out the same port (which a server given
    it for both REST and gRPC would refuse)."""
    with contextlib.ExitStack() as held:
        socks = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def wait_until_ready(url: str, process: subprocess.Popen[Any], timeout_s: float = 60) -> None:
    """Poll ``url``/v2/health/ready until it answers 200; fail early if the process exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server process exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the server at {url} was not ready after {timeout_s} s")


def stop_process(
    process: subprocess.Popen[Any], sig: signal.Signals = signal.SIGTERM, timeout_s: float = 15
) -> None:
    """Ask the process to stop with ``sig``; kill it if it has not stopped in time."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass(frozen=True, slots=True)
class ServerProcess:
    pid: int
    http: str  # host:port
    grpc: str  # host:port
    #: The process itself, for a test that stops it and reads its exit status.
    process: subprocess.Popen[bytes] | None = field(default=None, compare=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.http}"


@contextmanager
def serve_process(
    home: Path,
    *,
    workers: int = 1,
    output: IO[bytes] | None = None,
    timeout_s: float = 120,
    environment: Mapping[str, str] | None = None,
) -> Iterator[ServerProcess]:
    """``maas serve`` over ``home`` on 127.0.0.1, REST and gRPC on free ports; stopped on exit.

    ``output`` receives the server's stdout and stderr (default: discarded);
    ``environment`` adds ``MAAS_*`` variables. The server stops on SIGTERM without a
    grace period (``MAAS_SHUTDOWN_GRACE_S=0``) unless ``environment`` gives one.
    """
    port, grpc_port = free_ports(2)
    env = {
        **os.environ,
        "MAAS_SHUTDOWN_GRACE_S": "0",
        **(environment or {}),
        "MAAS_HOME": str(home),
        "MAAS_HOST": "127.0.0.1",
        "MAAS_PORT": str(port),
        "MAAS_GRPC_PORT": str(grpc_port),
        "MAAS_WORKERS": str(workers),
    }
    maas = Path(sys.executable).parent / "maas"
    sink = output if output is not None else subprocess.DEVNULL
    process = subprocess.Popen(
        [str(maas), "serve"], env=env, cwd=home, stdout=sink, stderr=subprocess.STDOUT
    )
    try:
        wait_until_ready(f"http://127.0.0.1:{port}", process, timeout_s)
        yield ServerProcess(process.pid, f"127.0.0.1:{port}", f"127.0.0.1:{grpc_port}", process)
    finally:
        stop_process(process)
