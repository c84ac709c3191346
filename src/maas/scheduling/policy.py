"""The knobs of a deployed version's scheduler, as small immutable values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["BatchingPolicy", "InstancePolicy"]


@dataclass(frozen=True, slots=True)
class BatchingPolicy:
    """How requests are grouped into batches.

    ``max_batch_size`` counts rows (the first dim summed over requests); 0 or 1 turns
    batching off. A request waits at most ``max_queue_delay_s`` for companions, and a
    batch that reaches ``max_batch_size`` or one of ``preferred_batch_sizes`` leaves at
    once. At most ``max_queue_size`` requests wait; one more is refused (503). With
    ``max_requests_per_s``, requests beyond that rate (a token bucket holding one second's
    worth) are refused (429) before they queue.
    """

    max_batch_size: int = 32
    max_queue_delay_s: float = 0.0
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_size: int = 1024
    default_timeout_s: float | None = None
    max_requests_per_s: float | None = None


@dataclass(frozen=True, slots=True)
class InstancePolicy:
    """How many runtime instances serve a version, and where they run.

    ``kind="auto"`` picks threads for runtimes that release the GIL and worker
    processes for the others.
    """

    count: int = 1
    kind: Literal["auto", "thread", "process"] = "auto"
    intra_op_threads: int | None = None
    #: Runtime threads spin between calls (see ``LoadOptions.spinning``).
    spinning: bool = False
    #: Thread instances run batches that typically take less than this on the event
    #: loop's thread (no hand-off); 0 never does.
    inline_max_s: float = 0.0002
