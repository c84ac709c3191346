"""The weighted split of a traffic policy: exact fractions, and whole batches under load."""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from maas.runtimes.onnx import OnnxRuntime
from maas.scheduling.policy import BatchingPolicy, InstancePolicy
from maas.scheduling.pool import build_pool
from maas.scheduling.scheduler import VersionScheduler
from maas.serving.routing import Split
from maas.testing.models import write_linear_model


def test_one_request_at_a_time_follows_the_weights_exactly() -> None:
    split = Split((1, 2), (90.0, 10.0), None, filling=lambda number: False)
    picks = [split.pick() for _ in range(2_000)]
    assert Counter(picks) == {1: 1_800, 2: 200}
    assert picks[:10] == [1] * 5 + [2] + [1] * 4  # spread out, not 1,800 then 200
    assert split.counts == {1: 1_800, 2: 200}


def test_a_version_is_held_only_while_its_batch_is_filling() -> None:
    queued = {1: 0, 2: 0}
    split = Split((1, 2), (50.0, 50.0), None, filling=lambda number: queued[number] > 0)
    first = split.pick()
    queued[first] += 1
    assert [split.pick() for _ in range(3)] == [first] * 3  # it joins the filling batch
    queued[first] = 0  # the batch formed
    assert split.pick() != first  # the other version is owed the next requests


def test_the_sticky_header_decides_alone() -> None:
    split = Split((1, 2), (50.0, 50.0), "x-user", filling=lambda number: True)
    assert len({split.pick(b"alice") for _ in range(20)}) == 1
    assert {split.pick(key.encode()) for key in "abcdefghijklmnop"} == {1, 2}


def record_rows(into: list[int], rows: int, queue_s: float, compute_s: float) -> None:
    into.append(rows)


@pytest.mark.parametrize("hold", [False, True])
def test_a_canary_under_load_keeps_whole_batches(tmp_path: Path, hold: bool) -> None:
    # 32 callers over a 90/10 split of two real versions batching on the event loop:
    # switching per request gave the canary a batch of 1-2 rows on nearly every turn of
    # the loop (as many batches as the primary); switching between batches gives it
    # whole ones, and the fractions still land within a batch of 90/10. Every batch runs
    # on the loop (a generous inline bound), so the schedule is the same on a busy machine.
    model = write_linear_model(tmp_path / "linear.onnx")
    x = np.random.default_rng(0).standard_normal((1, 4)).astype(np.float32)
    rows: dict[int, list[int]] = {1: [], 2: []}

    async def main() -> Counter[int]:
        schedulers = {
            number: VersionScheduler(
                build_pool("onnx", model, OnnxRuntime, InstancePolicy(count=1, inline_max_s=60.0)),
                BatchingPolicy(max_batch_size=32),
                batchable=True,
                on_batch=functools.partial(record_rows, rows[number]),
            )
            for number in (1, 2)
        }
        # One request each first: the pool times it, and every batch after runs on the loop.
        for scheduler in schedulers.values():
            await scheduler.submit({"input": x})
        for batches in rows.values():
            batches.clear()
        filling = (lambda number: schedulers[number].batch_filling) if hold else None
        split = Split((1, 2), (90.0, 10.0), None, filling)
        served: Counter[int] = Counter()

        async def caller() -> None:
            while split.counts[1] + split.counts[2] < 4_000:
                number = split.pick()
                await schedulers[number].submit({"input": x})
                served[number] += 1

        await asyncio.gather(*(caller() for _ in range(32)))
        for scheduler in schedulers.values():
            await scheduler.close()
        return served

    served = asyncio.run(main())
    print("batches", len(rows[1]), len(rows[2]), "rows", np.mean(rows[1]), np.mean(rows[2]))
    total = served[1] + served[2]
    assert abs(served[2] - total / 10) <= 32
    if hold:
        assert len(rows[2]) < len(rows[1]) / 3
        assert np.mean(rows[2]) > 8
    else:
        assert len(rows[2]) > len(rows[1]) / 2  # the fragmentation the hold removes
        assert np.mean(rows[2]) < 4
