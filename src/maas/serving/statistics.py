"""Per-version inference statistics in the shape of Triton's ModelStatistics.

Counters are plain integers bumped on the event loop thread (no locks needed), read by
``GET /v2/models/{name}/stats`` and gRPC ``ModelStatistics``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["VersionStatistics"]


@dataclass(slots=True)
class _Duration:
    count: int = 0
    ns: int = 0

    def add(self, seconds: float, count: int = 1) -> None:
        self.count += count
        self.ns += int(seconds * 1e9)

    def to_dict(self) -> dict[str, int]:
        return {"count": self.count, "ns": self.ns}


@dataclass(slots=True)
class VersionStatistics:
    name: str
    version: str
    inference_count: int = 0  # rows inferred
    execution_count: int = 0  # batches run
    last_inference_ms: int = 0
    success: _Duration = field(default_factory=_Duration)
    fail: _Duration = field(default_factory=_Duration)
    queue: _Duration = field(default_factory=_Duration)
    compute_infer: _Duration = field(default_factory=_Duration)
    batches: dict[int, _Duration] = field(default_factory=dict)

    def record_request(self, ok: bool, seconds: float) -> None:
        (self.success if ok else self.fail).add(seconds)
        self.last_inference_ms = int(time.time() * 1000)

    def record_batch(self, rows: int, queue_s: float, compute_s: float) -> None:
        """The scheduler's hook: one batch of ``rows`` waited ``queue_s`` and ran ``compute_s``."""
        self.inference_count += rows
        self.execution_count += 1
        self.queue.add(queue_s)
        self.compute_infer.add(compute_s)
        self.batches.setdefault(rows, _Duration()).add(compute_s)

    def to_dict(self) -> dict[str, Any]:
        """Triton's shape. maas times a batch's compute as one span (``compute_infer``);
        input and output phases are counted once per batch with no time of their own,
        as Triton tools (perf_analyzer) require equal counts for the three phases."""

        def untimed(count: int) -> dict[str, int]:
            return {"count": count, "ns": 0}

        return {
            "name": self.name,
            "version": self.version,
            "last_inference": self.last_inference_ms,
            "inference_count": self.inference_count,
            "execution_count": self.execution_count,
            "inference_stats": {
                "success": self.success.to_dict(),
                "fail": self.fail.to_dict(),
                "queue": self.queue.to_dict(),
                "compute_input": untimed(self.compute_infer.count),
                "compute_infer": self.compute_infer.to_dict(),
                "compute_output": untimed(self.compute_infer.count),
            },
            "batch_stats": [
                {
                    "batch_size": rows,
                    "compute_input": untimed(d.count),
                    "compute_infer": d.to_dict(),
                    "compute_output": untimed(d.count),
                }
                for rows, d in sorted(self.batches.items())
            ],
        }
