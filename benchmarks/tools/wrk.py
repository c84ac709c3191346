"""wrk (Debian package ``wrk``) as the load generator for V2 REST, JSON and binary bodies.

``v2_post.lua`` sets the body once per thread (no Lua work per request) and prints one
``WRK_JSON {...}`` line from its ``done`` hook, which ``parse_wrk_output`` reads.

>>> body = write_body(Path("/tmp/b"), np.zeros((1, 64), np.float32), binary=True)  # doctest: +SKIP
>>> run_wrk("http://127.0.0.1:8080/v2/models/mlp/infer", body, 8, 5.0)          # doctest: +SKIP
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Body", "WrkResult", "parse_wrk_output", "run_wrk", "write_body", "wrk_binary"]

LUA_SCRIPT = Path(__file__).resolve().parent / "v2_post.lua"


@dataclass(frozen=True)
class Body:
    """A request body on disk; ``header_length`` is set for V2 binary-tensor bodies."""

    path: Path
    header_length: int | None = None


@dataclass(frozen=True)
class WrkResult:
    concurrency: int
    requests: int
    throughput_per_s: float
    p50_us: float
    p99_us: float
    non_2xx: int
    errors: int


def wrk_binary() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    return path


def write_body(path: Path, array: np.ndarray, *, binary: bool, output: str = "logits") -> Body:
    """A V2 inference request for input ``input`` holding ``array`` (FP32), written to ``path``.

    JSON bodies carry ``data`` as a flat list; binary bodies are the V2 binary tensor
    extension: a JSON header with ``binary_data_size`` followed by the raw little-endian
    bytes, and the output asked for as binary too.
    """
    array = np.ascontiguousarray(array, dtype="<f4")
    tensor: dict[str, object] = {"name": "input", "datatype": "FP32", "shape": list(array.shape)}
    if not binary:
        tensor["data"] = array.ravel().tolist()
        path.write_bytes(json.dumps({"inputs": [tensor]}).encode())
        return Body(path)
    raw = array.tobytes()
    tensor["parameters"] = {"binary_data_size": len(raw)}
    header = json.dumps(
        {"inputs": [tensor], "outputs": [{"name": output, "parameters": {"binary_data": True}}]}
    ).encode()
    path.write_bytes(header + raw)
    return Body(path, len(header))


def parse_wrk_output(text: str, concurrency: int) -> WrkResult:
    """Read the ``WRK_JSON`` line that ``v2_post.lua`` prints at the end of a run."""
    for line in text.splitlines():
        if line.startswith("WRK_JSON "):
            doc = json.loads(line.removeprefix("WRK_JSON "))
            seconds = doc["duration_us"] / 1e6
            ok = doc["requests"] - doc["non_2xx"]
            return WrkResult(
                concurrency=concurrency,
                requests=doc["requests"],
                throughput_per_s=ok / seconds if seconds else 0.0,
                p50_us=float(doc["p50_us"]),
                p99_us=float(doc["p99_us"]),
                non_2xx=doc["non_2xx"],
                errors=doc["errors"],
            )
    raise RuntimeError(f"no WRK_JSON line in wrk's output:\n{text[-2000:]}")


def run_wrk(
    url: str, body: Body, concurrency: int, duration_s: float, *, threads: int = 2
) -> WrkResult:
    """Keep ``concurrency`` connections busy with ``body`` for ``duration_s`` seconds."""
    threads = max(1, min(threads, concurrency))
    command = [
        wrk_binary(),
        "-t", str(threads),
        "-c", str(concurrency),
        "-d", f"{max(1, round(duration_s))}s",
        "--timeout", "30s",
        "-s", str(LUA_SCRIPT),
        url,
        "--",
        str(body.path),
    ]  # fmt: skip
    if body.header_length is not None:
        command.append(str(body.header_length))
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited with {done.returncode}: {done.stderr[-2000:]}")
    return parse_wrk_output(done.stdout, concurrency)
