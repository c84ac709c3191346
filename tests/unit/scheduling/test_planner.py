"""The batching rules, driven with explicit ``now`` values: no clock, no sleeps."""

from __future__ import annotations

import pytest

from maas.errors import QueueFullError
from maas.scheduling.planner import BatchPlanner, PendingItem
from maas.scheduling.policy import BatchingPolicy

DELAY_S = 0.01


def planner(**kwargs: object) -> BatchPlanner[str]:
    options: dict[str, object] = {"max_batch_size": 4, "max_queue_delay_s": DELAY_S}
    options.update(kwargs)
    return BatchPlanner(BatchingPolicy(**options))  # type: ignore[arg-type]  # test kwargs


def item(
    name: str, rows: int = 1, at: float = 0.0, key: str = "a", deadline: float | None = None
) -> PendingItem[str]:
    return PendingItem(rows, at, deadline, key, name)


def names(batch: list[PendingItem[str]] | None) -> list[str]:
    assert batch is not None
    return [i.payload for i in batch]


def test_full_batch_leaves_at_once() -> None:
    p = planner()
    for n in "abcd":
        p.add(item(n))
    assert names(p.next_batch(0.0)) == ["a", "b", "c", "d"]
    assert len(p) == 0
    assert p.next_batch(0.0) is None
    assert p.wake_at(0.0) is None


def test_batch_that_cannot_take_the_next_request_leaves_at_once() -> None:
    p = planner()
    p.add(item("a", rows=3))
    p.add(item("b", rows=2))
    assert names(p.next_batch(0.0)) == ["a"]
    assert p.next_batch(0.0) is None  # "b" alone waits for companions


def test_partial_batch_waits_for_max_queue_delay() -> None:
    p = planner()
    p.add(item("a", at=0.0))
    p.add(item("b", at=0.004))
    assert p.next_batch(0.005) is None
    assert p.wake_at(0.005) == pytest.approx(DELAY_S)
    assert names(p.next_batch(DELAY_S)) == ["a", "b"]


def test_preferred_size_leaves_at_once_and_leaves_the_rest() -> None:
    p = planner(max_batch_size=8, preferred_batch_sizes=(2,))
    p.add(item("a"))
    assert p.next_batch(0.0) is None
    p.add(item("b"))
    p.add(item("c", rows=2))
    assert names(p.next_batch(0.0)) == ["a", "b"]
    assert p.next_batch(0.0) is not None  # "c" alone is 2 rows: preferred too


def test_keys_batch_separately_oldest_first() -> None:
    p = planner()
    p.add(item("a1", at=0.0, key="a"))
    p.add(item("b1", at=0.001, key="b"))
    p.add(item("a2", at=0.002, key="a"))
    p.add(item("b2", at=0.003, key="b"))
    assert p.next_batch(0.005) is None
    assert names(p.next_batch(1.0)) == ["a1", "a2"]
    assert names(p.next_batch(1.0)) == ["b1", "b2"]


def test_full_batch_of_a_younger_key_does_not_wait_for_the_oldest() -> None:
    p = planner(max_batch_size=2)
    p.add(item("a1", at=0.0, key="a"))
    p.add(item("b1", at=0.001, key="b"))
    p.add(item("b2", at=0.002, key="b"))
    assert names(p.next_batch(0.003)) == ["b1", "b2"]
    assert names(p.next_batch(DELAY_S)) == ["a1"]


def test_expired_items_are_drained_and_never_batched() -> None:
    p = planner()
    p.add(item("a", deadline=0.002))
    p.add(item("b", deadline=0.5))
    assert p.wake_at(0.0) == pytest.approx(0.002)
    assert [i.payload for i in p.drain_expired(0.002)] == ["a"]
    assert p.drain_expired(0.003) == []
    assert len(p) == 1
    assert names(p.next_batch(DELAY_S)) == ["b"]
    assert p.drain_expired(1.0) == []  # "b" left with its batch: never reported expired


def test_cancelled_items_are_dropped() -> None:
    p = planner()
    a, b = item("a"), item("b")
    p.add(a)
    p.add(b)
    p.cancel(a)
    assert len(p) == 1
    assert names(p.next_batch(DELAY_S)) == ["b"]


def test_batching_off_runs_each_request_alone_in_order() -> None:
    p = planner(max_batch_size=1)
    p.add(item("a", rows=5))
    p.add(item("b", key="other"))
    assert names(p.next_batch(0.0)) == ["a"]
    assert names(p.next_batch(0.0)) == ["b"]


def test_oversized_item_runs_alone() -> None:
    p = planner()
    p.add(item("big", rows=9))
    assert names(p.next_batch(0.0)) == ["big"]


def test_full_queue_refuses_with_retry_after() -> None:
    p = planner(max_queue_size=2)
    p.add(item("a"))
    p.add(item("b"))
    p.retry_after_s = 0.25
    with pytest.raises(QueueFullError) as caught:
        p.add(item("c"))
    assert caught.value.details["retry_after_s"] == 0.25
    p.next_batch(1.0)
    p.add(item("c"))  # room again once a batch left


def test_drain_all_returns_every_waiting_item_in_order() -> None:
    p = planner()
    p.add(item("a", key="x"))
    p.add(item("b", key="y"))
    assert [i.payload for i in p.drain_all()] == ["a", "b"]
    assert len(p) == 0
