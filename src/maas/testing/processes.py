"""Start, wait for and stop server processes in end-to-end tests."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from typing import Any

import httpx

__all__ = ["free_port", "stop_process", "wait_until_ready"]


def free_port() -> int:
    """A loopback port that was free a moment ago (for a subprocess that binds it itself)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
