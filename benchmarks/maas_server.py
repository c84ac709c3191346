"""A throwaway ``maas serve`` for benchmarks: its own MAAS_HOME, free loopback ports, and
the resident memory of its process tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from benchmarks.tools.wrk import Body
from maas.testing.processes import ServerProcess, free_ports, serve_process, stop_process

MaasServer = ServerProcess  # the name the benchmark scripts use


def register(home: Path, models: dict[str, list[Path]]) -> None:
    """Register each ONNX file as the next version of its model in ``home``'s registry,
    with ``maas models upload`` as a user would: the same command in every maas version,
    so that ``serving.py --server-pythonpath`` can register for an older checkout too."""
    maas = Path(sys.executable).parent / "maas"
    env = {**os.environ, "MAAS_HOME": str(home), "MAAS_PORT": str(free_ports(1)[0])}
    for name, paths in models.items():
        for path in paths:
            subprocess.run(
                [str(maas), "models", "upload", str(path), "--name", name],
                env=env,
                cwd=home,
                capture_output=True,
                check=True,
                timeout=300,
            )


def create_predict_key(home: Path) -> str:
    """A ``predict`` key in ``home``'s registry (made as an operator would, before the
    server starts): with it, the server requires a key on every request."""
    maas = Path(sys.executable).parent / "maas"
    env = {**os.environ, "MAAS_HOME": str(home)}
    done = subprocess.run(
        [str(maas), "--local", "keys", "create", "bench", "--scope", "predict", "-q"],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout.strip()


@contextmanager
def running_maas(home: Path, workers: int = 1) -> Iterator[MaasServer]:
    """``maas serve`` on 127.0.0.1 with REST and gRPC on free ports; stopped by PID on exit."""
    with (
        (home / "server.log").open("wb") as log,
        serve_process(home, workers=workers, output=log) as server,
    ):
        yield server


@contextmanager
def environment(**variables: str) -> Iterator[None]:
    """Set environment variables (``MAAS_*``) for the servers started inside; restored after."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def timed_maas(
    home: Path, *, poll_s: float = 0.01, timeout_s: float = 300
) -> Iterator[tuple[MaasServer, float]]:
    """``running_maas`` (one process), and the seconds from just before the process was
    started to the first 200 of ``/v2/health/ready``, polled every ``poll_s``."""
    port, grpc_port = free_ports(2)
    env = {
        **os.environ,
        "MAAS_HOME": str(home),
        "MAAS_HOST": "127.0.0.1",
        "MAAS_PORT": str(port),
        "MAAS_GRPC_PORT": str(grpc_port),
        "MAAS_WORKERS": "1",
    }
    maas = Path(sys.executable).parent / "maas"
    with (home / "server.log").open("ab") as log:
        started = time.monotonic()
        process = subprocess.Popen(
            [str(maas), "serve"], env=env, cwd=home, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=1) as client:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"the server exited with {process.returncode}")
                if time.monotonic() - started > timeout_s:
                    raise TimeoutError(f"the server at {url} was not ready after {timeout_s} s")
                try:
                    if client.get("/v2/health/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(poll_s)
        ready_s = time.monotonic() - started
        yield MaasServer(process.pid, f"127.0.0.1:{port}", f"127.0.0.1:{grpc_port}"), ready_s
    finally:
        stop_process(process)


InferRequest = tuple[bytes, dict[str, str]]  # the body and the headers of one request


def infer_request(body: Body) -> InferRequest:
    """The bytes and headers that wrk sends for ``body`` (JSON or V2 binary), read once."""
    if body.header_length is None:
        return body.path.read_bytes(), {"Content-Type": "application/json"}
    return body.path.read_bytes(), {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(body.header_length),
    }


def infer(
    client: httpx.Client, model: str, request: InferRequest, version: int | None = None
) -> httpx.Response:
    """One V2 inference of ``model`` (its default route, or ``version``); raises unless 200."""
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version is not None else "")
    content, headers = request
    return client.post(f"{path}/infer", content=content, headers=headers).raise_for_status()


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (worker processes included), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def tree_rss_bytes(pid: int) -> int:
    """VmRSS of ``pid`` and all its descendants (worker processes included), from /proc."""
    total = 0
    for current in _tree(pid):
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) spent so far by ``pid`` and its descendants. Unlike
    throughput, CPU time per request does not move when another machine's work steals
    this one's cores, so it compares two code versions on a shared machine."""
    ticks = 0
    for current in _tree(pid):
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def warm_versions(server: MaasServer, model: str, versions: int, width: int) -> None:
    """One inference on each version, so that every version is loaded."""
    body = {
        "inputs": [
            {"name": "input", "datatype": "FP32", "shape": [1, width], "data": [0.0] * width}
        ]
    }
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for version in range(1, versions + 1):
            reply = client.post(f"/v2/models/{model}/versions/{version}/infer", json=body)
            reply.raise_for_status()


def memory_check(workdir: Path, mlp_versions: list[Path], workers: int = 1) -> tuple[int, int]:
    """RSS (bytes) of a server with 1 MLP version loaded, and with all of ``mlp_versions``."""
    results = []
    for count in (1, len(mlp_versions)):
        home = workdir / f"memory-{count}"
        home.mkdir(parents=True)
        register(home, {"mlp": mlp_versions[:count]})
        with running_maas(home, workers) as server:
            warm_versions(server, "mlp", count, 64)
            results.append(tree_rss_bytes(server.pid))
    return results[0], results[1]
