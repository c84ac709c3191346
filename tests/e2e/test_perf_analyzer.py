"""Triton's perf_analyzer drives a real ``maas serve`` over REST and gRPC, briefly.

perf_analyzer reads the model config (``/v2/models/{name}/config``, gRPC ModelConfig),
sends binary tensors over REST by default, and must finish a bounded run with exit code 0.
It is installed by ``benchmarks/tools/perf_analyzer.py`` into ``benchmarks/.cache/``; the
test skips, with the reason, only where that binary cannot be installed or started.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from maas.control.uploads import register_upload
from maas.registry import Registry
from maas.store import LocalStore
from maas.testing.models import write_linear_model
from maas.testing.processes import serve_process

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.tools.perf_analyzer import (
    PerfAnalyzerUnavailable,
    ensure_perf_analyzer,
    run_perf_analyzer,
)

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Server:
    http: str  # host:port
    grpc: str  # host:port
    has_grpc: bool


@pytest.fixture(scope="module")
def perf_analyzer() -> Path:
    try:
        return ensure_perf_analyzer()
    except PerfAnalyzerUnavailable as exc:
        pytest.skip(f"perf_analyzer unavailable: {exc.reason}")


def _grpc_answers(address: str, timeout_s: float = 5) -> bool:
    import tritonclient.grpc as triton_grpc

    deadline = time.monotonic() + timeout_s
    client = triton_grpc.InferenceServerClient(address)
    try:
        while time.monotonic() < deadline:
            try:
                if client.is_server_live():
                    return True
            except Exception:  # InferenceServerException when nothing listens yet
                time.sleep(0.2)
        return False
    finally:
        client.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("home")
    registry = Registry(f"sqlite:///{home}/maas.db", LocalStore(home / "artifacts"))
    registry.upgrade()
    try:
        register_upload(registry, "linear", write_linear_model(home / "l.onnx"), actor="test")
    finally:
        registry.close()
    with serve_process(home) as process:
        yield Server(process.http, process.grpc, _grpc_answers(process.grpc))


def test_perf_analyzer_over_rest(perf_analyzer: Path, server: Server) -> None:
    results = run_perf_analyzer(
        "linear", server.http, "http", "1:2", 1000, timeout_s=120, binary=perf_analyzer
    )
    assert results, "perf_analyzer wrote no measurement"
    assert {r.concurrency for r in results} <= {1, 2}
    assert all(r.throughput_per_s > 0 for r in results)


def test_perf_analyzer_over_grpc(perf_analyzer: Path, server: Server) -> None:
    if not server.has_grpc:
        pytest.skip("this server build has no gRPC endpoint on MAAS_GRPC_PORT")
    results = run_perf_analyzer(
        "linear", server.grpc, "grpc", "1:2", 1000, timeout_s=120, binary=perf_analyzer
    )
    assert results, "perf_analyzer wrote no measurement"
    assert {r.concurrency for r in results} <= {1, 2}
    assert all(r.throughput_per_s > 0 for r in results)
