"""The live window of one served version's inputs: the hot path's ``offer``, the
interval's ``take``, and a ring of features for the scores (see ``maas.monitoring.drift``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Final

import numpy as np

from maas.monitoring.drift.reference import Reference

__all__ = ["MAX_PENDING_BYTES", "LiveWindow"]

MAX_PENDING_BYTES: Final = 64 * 2**20


class LiveWindow:
    """The newest ``rows`` live rows of one served version (see the module docstring).

    ``offer`` on the event loop (the hot path), ``take`` on the event loop once an
    interval, ``absorb`` and ``values`` in one thread at a time.
    """

    __slots__ = (
        "_at",
        "_budget",
        "_count",
        "_held_bytes",
        "_lead",
        "_next",
        "_pending",
        "_ring",
        "_seen",
        "_seen_at_take",
        "_stride",
        "reference",
        "rows",
    )

    def __init__(
        self, reference: Reference, rows: int, *, max_pending_bytes: int = MAX_PENDING_BYTES
    ) -> None:
        self.reference = reference
        self.rows = rows
        lead = reference.inputs[0]
        self._lead = lead.name
        self._budget = min(max_pending_bytes, rows * 8 * math.prod(lead.row_shape))
        self._pending: list[Mapping[str, np.ndarray]] = []
        self._held_bytes = 0
        self._seen = self._next = self._seen_at_take = 0
        self._stride = 1
        self._ring = np.empty((rows, len(reference.features)))
        self._count = self._at = 0

    def offer(self, feed: Mapping[str, np.ndarray]) -> None:
        """Keep a reference to ``feed`` unless sampling skips it or the intake is full.
        O(1): a count, a comparison, a lookup and an append."""
        self._seen += 1
        if self._seen < self._next or self._held_bytes >= self._budget:
            return
        array = feed.get(self._lead)
        if array is None:
            return
        self._next = self._seen + self._stride
        self._pending.append(feed)
        self._held_bytes += array.nbytes

    def take(self) -> list[Mapping[str, np.ndarray]]:
        """What was kept since the last call, and the sampling for the next interval."""
        pending, self._pending, self._held_bytes = self._pending, [], 0
        seen, self._seen_at_take = self._seen - self._seen_at_take, self._seen
        self._stride = max(1, seen // self.rows)
        return pending

    @property
    def stride(self) -> int:
        """1: every request is kept; k: every k-th."""
        return self._stride

    @property
    def held(self) -> int:
        """Rows in the window now."""
        return self._count

    def absorb(self, feeds: Sequence[Mapping[str, np.ndarray]]) -> int:
        """Extract the features of ``feeds`` into the ring (the oldest rows leave);
        returns the rows added."""
        block = self.reference.extract(feeds)[-self.rows :]
        added = len(block)
        if added:
            slots = (self._at + np.arange(added)) % self.rows
            self._ring[slots] = block
            self._at = int(slots[-1] + 1) % self.rows
            self._count = min(self.rows, self._count + added)
        return added

    def values(self) -> np.ndarray:
        """The window's rows (in no particular order: the scores do not need one)."""
        return self._ring[: self._count]
