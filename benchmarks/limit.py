"""The physical limit: ONNX Runtime called in-process, items/s at each batch size.

No server, no copies, no decoding: one InferenceSession, one thread calling ``run`` on a
ready numpy batch. Every served figure in ``serving.py`` is reported as a ratio to this.

    .venv/bin/python benchmarks/limit.py [--duration-s 3] [--models cnn mlp]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.models import INPUT_SHAPES, MODELS, model_path

BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64)


@dataclass(frozen=True)
class LimitResult:
    model: str
    batch_size: int
    items_per_s: float
    batch_latency_ms: float


def measure(
    model: str,
    batch_size: int,
    duration_s: float = 3.0,
    warmup_s: float = 0.5,
    session: ort.InferenceSession | None = None,
) -> LimitResult:
    """Items/s of ``model`` at ``batch_size``: warm up, then run for about ``duration_s``."""
    if session is None:
        session = ort.InferenceSession(str(model_path(model)), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feed = {"input": rng.standard_normal((batch_size, *INPUT_SHAPES[model]), dtype=np.float32)}
    end = time.monotonic() + warmup_s
    while time.monotonic() < end:
        session.run(None, feed)
    runs = 0
    start = time.perf_counter()
    end = time.monotonic() + duration_s
    while True:
        session.run(None, feed)
        runs += 1
        if time.monotonic() >= end:
            break
    elapsed = time.perf_counter() - start
    return LimitResult(model, batch_size, runs * batch_size / elapsed, elapsed / runs * 1000)


def measure_model(
    model: str, batch_sizes: tuple[int, ...] = BATCH_SIZES, duration_s: float = 3.0
) -> list[LimitResult]:
    session = ort.InferenceSession(str(model_path(model)), providers=["CPUExecutionProvider"])
    return [measure(model, b, duration_s, session=session) for b in batch_sizes]


def limits(
    models: tuple[str, ...] = MODELS,
    batch_sizes: tuple[int, ...] = BATCH_SIZES,
    duration_s: float = 3.0,
) -> dict[str, list[LimitResult]]:
    """The limit table for ``models``: model -> one result per batch size."""
    return {m: measure_model(m, batch_sizes, duration_s) for m in models}


def format_table(table: dict[str, list[LimitResult]]) -> str:
    lines = [f"{'model':<6} {'batch':>5} {'items/s':>12} {'ms/batch':>10}"]
    for results in table.values():
        for r in results:
            lines.append(
                f"{r.model:<6} {r.batch_size:>5} {r.items_per_s:>12,.0f}"
                f" {r.batch_latency_ms:>10.3f}"
            )
        best = max(results, key=lambda r: r.items_per_s)
        lines.append(f"{best.model:<6} best batch {best.batch_size}: {best.items_per_s:,.0f}/s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=list(BATCH_SIZES))
    parser.add_argument("--duration-s", type=float, default=3.0, help="timed seconds per cell")
    args = parser.parse_args()
    print(f"onnxruntime {ort.__version__}, intra-op threads: default (all cores)")
    print(format_table(limits(tuple(args.models), tuple(args.batch_sizes), args.duration_s)))


if __name__ == "__main__":
    main()
