"""What a training job costs the inference it shares a machine with.

One ``maas serve`` per configuration, serving the benchmark MLP; wrk drives V2
REST-binary requests at --concurrency for --duration-s three times: with the server
idle, then while a training job (a CNN on digits, kept running for the whole window)
trains in the server's job worker with the worker at the same CPU priority
(MAAS_JOB_NICE=0) and at the default lower one (MAAS_JOB_NICE=10). It prints
throughput and latency of each, their ratio to the idle server and to the in-process
limit (ONNX Runtime at batch 1), and how fast the job trained meanwhile.

Everything binds 127.0.0.1, lives in a throwaway folder, and each process is stopped by
its PID. Load generator, server and job share the same cores.

    .venv/bin/python benchmarks/training_interference.py --duration-s 10
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import limit
from benchmarks.maas_server import MaasServer, register, running_maas
from benchmarks.models import INPUT_SHAPES, model_path
from benchmarks.tools import wrk

MODEL = "mlp"
# Long enough to outlast any measuring window; cancelled when the window ends.
JOB = {
    "model_name": "background",
    "model": {"name": "cnn"},
    "dataset": {"kind": "digits"},
    "hyperparameters": {"epochs": 1000, "batch_size": 32},
}


@dataclass(frozen=True)
class Row:
    case: str
    throughput_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    job_steps_per_s: float | None


@contextmanager
def _environment(**variables: str) -> Iterator[None]:
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


def _job_progress(client: httpx.Client, job_id: int) -> float:
    """Optimiser steps done so far (epochs finished x steps per epoch + steps in this one)."""
    job: dict[str, Any] = client.get(f"/api/jobs/{job_id}").json()
    return float(job["epoch"] * job["steps"] + job["step"])


def _measure(
    server: MaasServer, body: wrk.Body, concurrency: int, duration_s: float, case: str, train: bool
) -> Row:
    url = f"{server.url}/v2/models/{MODEL}/infer"
    with httpx.Client(base_url=server.url, timeout=30) as client:
        job_id = None
        if train:
            job_id = client.post("/api/jobs", json=JOB).raise_for_status().json()["id"]
            while client.get(f"/api/jobs/{job_id}").json()["steps"] == 0:  # training, not loading
                time.sleep(0.2)
            steps_before, started = _job_progress(client, job_id), time.monotonic()
        result = wrk.run_wrk(url, body, concurrency, duration_s)
        rate = None
        if job_id is not None:
            rate = (_job_progress(client, job_id) - steps_before) / (time.monotonic() - started)
            client.post(f"/api/jobs/{job_id}/cancel")
            while client.get(f"/api/jobs/{job_id}").json()["state"] == "running":
                time.sleep(0.2)
    return Row(
        case,
        result.throughput_per_s,
        result.p50_us / 1000,
        result.p99_us / 1000,
        result.non_2xx + result.errors,
        rate,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration-s", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    floor = limit.measure(MODEL, 1, duration_s=3.0)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="maas-bench-train-") as folder:
        body = wrk.write_body(
            Path(folder) / "body.bin",
            np.random.default_rng(0).standard_normal((1, *INPUT_SHAPES[MODEL]), dtype=np.float32),
            binary=True,
        )
        for nice, cases in (
            ("0", ("idle", "training, job nice 0")),
            ("10", ("training, job nice 10",)),
        ):
            home = Path(folder) / f"home-nice{nice}"
            home.mkdir()
            register(home, {MODEL: [model_path(MODEL)]})
            with _environment(MAAS_JOB_NICE=nice), running_maas(home) as server:
                wrk.run_wrk(f"{server.url}/v2/models/{MODEL}/infer", body, args.concurrency, 2.0)
                for case in cases:
                    training = case != "idle"
                    rows.append(
                        _measure(server, body, args.concurrency, args.duration_s, case, training)
                    )

    idle = rows[0]
    print(
        f"\n{MODEL}, REST-binary, c={args.concurrency}, {args.duration_s:g} s a run; "
        f"in-process limit at batch 1: {floor.items_per_s:,.0f}/s"
    )
    header = (
        f"{'case':<24}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'vs idle':>9}{'vs limit':>10}{'job steps/s':>13}"
    )
    print(header)
    for row in rows:
        steps = "-" if row.job_steps_per_s is None else f"{row.job_steps_per_s:.0f}"
        print(
            f"{row.case:<24}{row.throughput_per_s:>10,.0f}{row.p50_ms:>9.2f}{row.p99_ms:>9.2f}"
            f"{row.errors:>8}{row.throughput_per_s / idle.throughput_per_s:>9.2f}"
            f"{row.throughput_per_s / floor.items_per_s:>10.2f}{steps:>13}"
        )


if __name__ == "__main__":
    main()
