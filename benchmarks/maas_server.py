"""A throwaway ``maas serve`` for benchmarks: its own MAAS_HOME, free loopback ports, and
the resident memory of its process tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from maas.config import Settings
from maas.control.uploads import register_upload
from maas.registry.service import Registry
from maas.testing.processes import ServerProcess, serve_process

MaasServer = ServerProcess  # the name the benchmark scripts use


def register(home: Path, models: dict[str, list[Path]]) -> None:
    """Register each ONNX file as the next version of its model in ``home``'s registry."""
    registry = Registry.from_settings(Settings(home=home))
    try:
        for name, paths in models.items():
            for path in paths:
                register_upload(registry, name, path, actor="benchmark")
    finally:
        registry.close()


@contextmanager
def running_maas(home: Path, workers: int = 1) -> Iterator[MaasServer]:
    """``maas serve`` on 127.0.0.1 with REST and gRPC on free ports; stopped by PID on exit."""
    with (
        (home / "server.log").open("wb") as log,
        serve_process(home, workers=workers, output=log) as server,
    ):
        yield server


def tree_rss_bytes(pid: int) -> int:
    """VmRSS of ``pid`` and all its descendants (worker processes included), from /proc."""
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
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


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
