"""MLServer 1.7 as the peer: its own venv, an ONNX Runtime custom runtime, start and stop.

Two configurations, the best ones found on this machine kind:
- ``plain``: ``parallel_workers: 0`` (inference in the server process, no worker pool);
- ``batching``: the same plus adaptive batching (``max_batch_size``, ``max_batch_time``).

MLServer 1.7 needs ``uvloop<0.22`` to start. Nothing here is a maas dependency: it all
lives in ``benchmarks/.venv-mlserver``.

    .venv/bin/python benchmarks/peers/mlserver/server.py   # install, start, probe, stop
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

BENCH_DIR = Path(__file__).resolve().parents[2]
VENV_DIR = BENCH_DIR / ".venv-mlserver"
PACKAGES = ("mlserver>=1.7,<1.8", "uvloop<0.22", "onnxruntime")
CONFIGURATIONS = ("plain", "batching")


@dataclass
class MLServerHandle:
    process: subprocess.Popen[bytes]
    http_url: str
    configuration: str
    log_path: Path


def ensure_venv(venv: Path = VENV_DIR) -> Path:
    """Create the MLServer venv once (idempotent); returns its ``mlserver`` command."""
    mlserver = venv / "bin" / "mlserver"
    if mlserver.exists():
        return mlserver
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *PACKAGES],
        check=True,
        timeout=1200,
    )
    return mlserver


def write_repository(
    folder: Path,
    models: dict[str, Path],
    configuration: str,
    http_port: int,
    grpc_port: int,
    metrics_port: int,
) -> Path:
    """A model repository with settings.json and one folder per model."""
    if configuration not in CONFIGURATIONS:
        raise ValueError(f"configuration must be one of {CONFIGURATIONS}")
    folder.mkdir(parents=True, exist_ok=True)
    settings = {
        "host": "127.0.0.1",
        "http_port": http_port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        "parallel_workers": 0,
        "debug": False,
        "load_models_at_startup": True,
    }
    (folder / "settings.json").write_text(json.dumps(settings, indent=2))
    for name, onnx_path in models.items():
        model_dir = folder / name
        model_dir.mkdir(exist_ok=True)
        shutil.copy(Path(__file__).with_name("runtime.py"), model_dir / "runtime.py")
        model_settings: dict[str, object] = {
            "name": name,
            "implementation": "runtime.OnnxRuntimeModel",
            "parameters": {"uri": str(onnx_path.resolve())},
        }
        if configuration == "batching":
            model_settings["max_batch_size"] = 32
            model_settings["max_batch_time"] = 0.002
        (model_dir / "model-settings.json").write_text(json.dumps(model_settings, indent=2))
    return folder


def start(
    folder: Path,
    models: dict[str, Path],
    configuration: str,
    ports: tuple[int, int, int],
    timeout_s: float = 120,
) -> MLServerHandle:
    """Start MLServer on 127.0.0.1 and wait until every model is ready."""
    mlserver = ensure_venv()
    http_port, grpc_port, metrics_port = ports
    write_repository(folder, models, configuration, http_port, grpc_port, metrics_port)
    log_path = folder / "mlserver.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(mlserver), "start", str(folder)],
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(folder)},
        )
    handle = MLServerHandle(process, f"http://127.0.0.1:{http_port}", configuration, log_path)
    try:
        _wait_ready(handle, list(models), timeout_s)
    except BaseException:
        stop(handle)
        raise
    return handle


def _wait_ready(handle: MLServerHandle, models: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    pending = list(models)
    while time.monotonic() < deadline:
        if handle.process.poll() is not None:
            tail = handle.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"MLServer exited with {handle.process.returncode}:\n{tail}")
        try:
            while pending:
                url = f"{handle.http_url}/v2/models/{pending[0]}/ready"
                if httpx.get(url, timeout=1).status_code != 200:
                    break
                pending.pop(0)
            if not pending:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"MLServer models {pending} not ready after {timeout_s} s")


def stop(handle: MLServerHandle, timeout_s: float = 15) -> None:
    """Stop MLServer by its PID (SIGTERM, then SIGKILL)."""
    process = handle.process
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


if __name__ == "__main__":
    import tempfile

    sys.path.insert(0, str(BENCH_DIR.parent))
    from benchmarks.models import model_path
    from maas.testing.processes import free_ports

    with tempfile.TemporaryDirectory(prefix="mlserver-") as tmp:
        first, second, third = free_ports(3)
        ports = (first, second, third)
        mls = start(Path(tmp), {"mlp": model_path("mlp")}, "plain", ports)
        try:
            body = {
                "inputs": [
                    {"name": "input", "datatype": "FP32", "shape": [1, 64], "data": [0.0] * 64}
                ]
            }
            print(httpx.post(f"{mls.http_url}/v2/models/mlp/infer", json=body).json())
        finally:
            stop(mls)
