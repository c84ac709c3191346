"""The deterministic core of dynamic batching: which queued requests run together, and when.

No asyncio and no clock here: every method takes ``now`` (seconds), so the rules are
tested with plain numbers. The rules:

* A request whose deadline has passed is drained (``drain_expired``) and never run.
* Cancelled requests are skipped.
* Requests share a batch only with the same ``key`` (see ``stacking.batch_key``), in
  arrival order; a batch never holds more than ``max_batch_size`` rows.
* A batch leaves at once when it is full (``max_batch_size`` rows, or the next request
  of its key would not fit) or when a prefix of it sums exactly to a preferred size;
  otherwise it leaves when its oldest request has waited ``max_queue_delay_s``.
* Among ready batches the one holding the oldest request goes first, so no key starves.
* Batching off (``max_batch_size <= 1``): each request is its own batch, in arrival order.

An item with more rows than ``max_batch_size`` runs alone; the batcher refuses such
requests at submit (as Triton does), so this only guards the planner's own invariant.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from maas.errors import QueueFullError
from maas.scheduling.policy import BatchingPolicy

__all__ = ["BatchPlanner", "PendingItem"]

P = TypeVar("P")

_sequence = itertools.count()


@dataclass(slots=True, eq=False)
class PendingItem(Generic[P]):
    """One queued request: its size, timing and key; ``payload`` is the caller's."""

    rows: int
    arrival_s: float
    deadline_s: float | None
    key: Hashable
    payload: P
    cancelled: bool = False
    #: True once the item left the queue (batched, expired or cancelled).
    taken: bool = False
    seq: int = field(default_factory=lambda: next(_sequence))


class BatchPlanner(Generic[P]):
    """The bounded queue of one version and the batching rules over it."""

    def __init__(self, policy: BatchingPolicy) -> None:
        self.policy = policy
        self._batching = policy.max_batch_size > 1
        self._max_rows = max(policy.max_batch_size, 1)
        self._preferred = frozenset(s for s in policy.preferred_batch_sizes if s > 0)
        self._by_key: dict[Hashable, deque[PendingItem[P]]] = {}
        self._deadlines: list[tuple[float, int, PendingItem[P]]] = []
        self._count = 0
        #: Hint put in ``QueueFullError``; the batcher keeps it near the queue's drain time.
        self.retry_after_s = 1.0

    def __len__(self) -> int:
        return self._count

    def add(self, item: PendingItem[P]) -> None:
        """Queue ``item``, or refuse it at once when the queue is at its bound."""
        if self._count >= self.policy.max_queue_size:
            raise QueueFullError(
                f"the request queue is full ({self.policy.max_queue_size} waiting); retry later",
                {"retry_after_s": self.retry_after_s, "max_queue_size": self.policy.max_queue_size},
            )
        queue = self._by_key.get(item.key)
        if queue is None:
            queue = self._by_key[item.key] = deque()
        queue.append(item)
        self._count += 1
        if item.deadline_s is not None:
            heapq.heappush(self._deadlines, (item.deadline_s, item.seq, item))
            if len(self._deadlines) > 2 * self._count + 64:
                self._compact_deadlines()

    def cancel(self, item: PendingItem[P]) -> None:
        """Mark ``item`` cancelled; if still queued it will never run."""
        item.cancelled = True
        if not item.taken:
            item.taken = True
            self._count -= 1

    def drain_expired(self, now: float) -> list[PendingItem[P]]:
        """Remove and return the queued items whose deadline is ``<= now``."""
        expired: list[PendingItem[P]] = []
        heap = self._deadlines
        while heap and (heap[0][2].taken or heap[0][0] <= now):
            item = heapq.heappop(heap)[2]
            if not item.taken:
                item.taken = True
                self._count -= 1
                expired.append(item)
        return expired

    def drain_all(self) -> list[PendingItem[P]]:
        """Remove and return every queued item (on shutdown)."""
        items = [i for queue in self._by_key.values() for i in queue if not i.taken]
        for item in items:
            item.taken = True
        self._by_key.clear()
        self._deadlines.clear()
        self._count = 0
        return sorted(items, key=lambda i: i.seq)

    def next_batch(self, now: float) -> list[PendingItem[P]] | None:
        """A batch to run now, taken off the queue; None when every batch should wait."""
        heads = self._heads()
        if not heads:
            return None
        if not self._batching:
            return self._take([heads[0]])
        for head in heads:
            batch = self._ready_batch(self._by_key[head.key], now)
            if batch is not None:
                return self._take(batch)
        return None

    def wake_at(self, now: float) -> float | None:
        """When ``next_batch`` or ``drain_expired`` may have something new, absent arrivals."""
        heads = self._heads()
        if not heads:
            return None
        due = now if not self._batching else heads[0].arrival_s + self.policy.max_queue_delay_s
        deadline = self.next_deadline()
        return due if deadline is None else min(due, deadline)

    def next_deadline(self) -> float | None:
        """The earliest deadline of a queued item, for waking while no instance is free."""
        heap = self._deadlines
        while heap and heap[0][2].taken:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def _heads(self) -> list[PendingItem[P]]:
        """The oldest live item of every key, oldest first; drops dead items and empty keys."""
        heads: list[PendingItem[P]] = []
        empty: list[Hashable] = []
        for key, queue in self._by_key.items():
            while queue and queue[0].taken:
                queue.popleft()
            if queue:
                heads.append(queue[0])
            else:
                empty.append(key)
        for key in empty:
            del self._by_key[key]
        if len(heads) > 1:
            heads.sort(key=lambda i: i.seq)
        return heads

    def _ready_batch(self, queue: deque[PendingItem[P]], now: float) -> list[PendingItem[P]] | None:
        """The batch this key's queue should send now, or None if it should wait."""
        batch: list[PendingItem[P]] = []
        rows = 0
        preferred_len = 0
        full = False
        for item in queue:
            if item.taken:
                continue
            if batch and rows + item.rows > self._max_rows:
                full = True
                break
            batch.append(item)
            rows += item.rows
            if rows in self._preferred:
                preferred_len = len(batch)
            if rows >= self._max_rows:
                full = True
                break
        if full or now >= batch[0].arrival_s + self.policy.max_queue_delay_s:
            return batch
        if preferred_len:
            return batch[:preferred_len]
        return None

    def _take(self, batch: list[PendingItem[P]]) -> list[PendingItem[P]]:
        for item in batch:
            item.taken = True
        self._count -= len(batch)
        return batch

    def _compact_deadlines(self) -> None:
        self._deadlines = [entry for entry in self._deadlines if not entry[2].taken]
        heapq.heapify(self._deadlines)
