"""The dynamic batcher over a fake ``execute``: results go to their own callers."""

from __future__ import annotations

import asyncio
import random

import numpy as np
import pytest

from maas.errors import DeadlineExceededError, InvalidInputError, ModelError, QueueFullError
from maas.scheduling.batcher import DynamicBatcher
from maas.scheduling.policy import BatchingPolicy

Feed = dict[str, np.ndarray]


class FakeModel:
    """``y = x * 2 + offset`` per row, recording each batch it is given."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.batches: list[Feed] = []

    async def execute(self, feed: Feed) -> Feed:
        self.batches.append(feed)
        await asyncio.sleep(self.delay_s)
        return {"y": feed["x"] * 2 + feed["offset"]}

    def seen_offsets(self) -> set[float]:
        return {float(v) for batch in self.batches for v in batch["offset"].ravel()}


def request(rows: int, width: int, offset: float) -> Feed:
    x = np.random.default_rng(int(offset)).standard_normal((rows, width)).astype(np.float32)
    return {"x": x, "offset": np.full((rows, 1), offset, np.float32)}


def test_no_cross_talk_under_mixed_concurrent_load() -> None:
    model = FakeModel(delay_s=0.002)

    async def main() -> None:
        batcher = DynamicBatcher(
            model.execute,
            BatchingPolicy(max_batch_size=16, max_queue_delay_s=0.001),
            max_in_flight=2,
        )
        rng = random.Random(0)
        feeds = [request(rng.randint(1, 5), rng.choice((3, 5)), float(i)) for i in range(200)]
        results = await asyncio.gather(*(batcher.submit(f) for f in feeds))
        await batcher.close()
        for feed, result in zip(feeds, results, strict=True):
            np.testing.assert_array_equal(result["y"], feed["x"] * 2 + feed["offset"])

    asyncio.run(main())
    sizes = [len(b["x"]) for b in model.batches]
    assert max(sizes) > 1
    assert max(sizes) <= 16
    assert {b["x"].shape[1] for b in model.batches} == {3, 5}


def test_queue_full_is_refused_at_once_with_retry_after() -> None:
    model = FakeModel(delay_s=0.05)

    async def main() -> None:
        batcher = DynamicBatcher(model.execute, BatchingPolicy(max_queue_size=2))
        first = asyncio.create_task(batcher.submit(request(1, 3, 1)))
        await asyncio.sleep(0.01)  # the first one runs, holding the only instance
        waiting = [asyncio.create_task(batcher.submit(request(1, 3, i))) for i in (2, 3)]
        await asyncio.sleep(0)
        with pytest.raises(QueueFullError) as caught:
            await batcher.submit(request(1, 3, 4))
        assert caught.value.details["retry_after_s"] > 0
        await asyncio.gather(first, *waiting)
        await batcher.close()

    asyncio.run(main())


def test_timed_out_request_is_never_executed() -> None:
    model = FakeModel(delay_s=0.1)

    async def main() -> None:
        batcher = DynamicBatcher(model.execute, BatchingPolicy(max_batch_size=1))
        first = asyncio.create_task(batcher.submit(request(1, 3, 1)))
        await asyncio.sleep(0.01)
        with pytest.raises(DeadlineExceededError):
            await batcher.submit(request(1, 3, 2), timeout_s=0.02)
        await first
        await batcher.close()

    asyncio.run(main())
    assert model.seen_offsets() == {1.0}


def test_cancelled_waiting_request_is_never_executed() -> None:
    model = FakeModel(delay_s=0.05)

    async def main() -> None:
        batcher = DynamicBatcher(model.execute, BatchingPolicy(max_batch_size=4))
        first = asyncio.create_task(batcher.submit(request(4, 3, 1)))
        await asyncio.sleep(0.01)
        gone = asyncio.create_task(batcher.submit(request(1, 3, 2)))
        await asyncio.sleep(0.01)
        gone.cancel()
        after = asyncio.create_task(batcher.submit(request(1, 3, 3)))
        await asyncio.gather(first, after)
        assert gone.cancelled()
        assert batcher.queue_length == 0
        await batcher.close()

    asyncio.run(main())
    assert model.seen_offsets() == {1.0, 3.0}


def test_request_larger_than_max_batch_size_is_refused() -> None:
    async def main() -> None:
        batcher = DynamicBatcher(FakeModel().execute, BatchingPolicy(max_batch_size=4))
        with pytest.raises(InvalidInputError, match="max_batch_size"):
            await batcher.submit(request(5, 3, 1))
        await batcher.close()

    asyncio.run(main())


def test_execute_error_reaches_every_request_of_the_batch_and_stats_are_reported() -> None:
    """A model's own exception reaches callers as ModelError naming it (no traceback)."""
    stats: list[tuple[int, float, float]] = []

    async def broken(feed: Feed) -> Feed:
        raise RuntimeError("boom")

    async def main() -> None:
        batcher = DynamicBatcher(
            broken, BatchingPolicy(), on_batch=lambda r, q, c: stats.append((r, q, c))
        )
        with pytest.raises(ModelError, match=r"^the model failed: boom$"):
            await batcher.submit(request(1, 3, 1))
        ok = DynamicBatcher(
            FakeModel().execute,
            BatchingPolicy(),
            on_batch=lambda r, q, c: stats.append((r, q, c)),
        )
        await ok.submit(request(2, 3, 1))
        await batcher.close()
        await ok.close()

    asyncio.run(main())
    assert [s[0] for s in stats] == [2]


class InlineModel:
    """Runs each batch without suspending, as a tiny model run on the event loop does."""

    def __init__(self) -> None:
        self.batch_rows: list[int] = []

    async def execute(self, feed: Feed) -> Feed:
        self.batch_rows.append(len(feed["x"]))
        return {"y": feed["x"] * 2 + feed["offset"]}


def test_two_versions_taking_turns_on_the_loop_keep_whole_batches() -> None:
    # 32 callers, every tenth request to a second version (a 90/10 canary): the first
    # version's batches hold nearly all of its ~29 callers. Forming a batch as soon as the
    # first request woke the batcher split them into two halves that took turns (~14).
    primary, canary = InlineModel(), InlineModel()

    async def main() -> None:
        batchers = [DynamicBatcher(m.execute, BatchingPolicy()) for m in (primary, canary)]
        sent = 0

        async def caller() -> None:
            nonlocal sent
            while sent < 6_000:
                sent += 1
                batcher = batchers[1] if sent % 10 == 0 else batchers[0]
                await batcher.submit(request(1, 4, float(sent % 7)))

        await asyncio.gather(*(caller() for _ in range(32)))
        for batcher in batchers:
            await batcher.close()

    asyncio.run(main())
    assert sum(primary.batch_rows) + sum(canary.batch_rows) >= 6_000
    assert np.mean(primary.batch_rows) > 24
