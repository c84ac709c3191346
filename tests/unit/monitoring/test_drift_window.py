"""The live window: the hot path keeps references (no copies), sampling thins a busy
version's intake, the intake per interval is bounded, and the ring keeps the newest rows."""

from __future__ import annotations

import numpy as np

from maas.monitoring.drift import LiveWindow, Reference, ReferenceSource

SOURCE = ReferenceSource("dataset", "normal numbers")


def _reference(columns: int = 4) -> Reference:
    rows = np.random.default_rng(0).normal(size=(1000, columns)).astype(np.float32)
    return Reference.build({"x": rows}, SOURCE)


def _feed(value: float, rows: int = 1, columns: int = 4) -> dict[str, np.ndarray]:
    return {"x": np.full((rows, columns), value, np.float32)}


def test_offer_keeps_the_feed_itself() -> None:
    window = LiveWindow(_reference(), rows=100)
    feed = _feed(1.0)
    window.offer(feed)
    taken = window.take()
    assert len(taken) == 1 and taken[0] is feed and taken[0]["x"] is feed["x"]
    assert window.take() == []


def test_feeds_without_the_input_are_not_kept() -> None:
    window = LiveWindow(_reference(), rows=100)
    window.offer({"other": np.zeros((1, 4), np.float32)})
    assert window.take() == []


def test_a_busy_interval_makes_the_next_one_sample() -> None:
    window = LiveWindow(_reference(), rows=10)
    for _ in range(50):
        window.offer(_feed(0.0))
    assert len(window.take()) < 50  # the intake was full before the interval ended
    assert window.stride == 5  # 50 requests for a window of 10 rows: every 5th next time
    for i in range(50):
        window.offer(_feed(float(i)))
    kept = window.take()
    assert [float(f["x"][0, 0]) for f in kept] == [
        0.0,
        5.0,
        10.0,
        15.0,
        20.0,
        25.0,
        30.0,
        35.0,
        40.0,
        45.0,
    ]
    for _ in range(3):
        window.offer(_feed(0.0))
    window.take()
    assert window.stride == 1  # quiet again: every request


def test_the_intake_of_an_interval_is_bounded_in_bytes() -> None:
    window = LiveWindow(_reference(), rows=1000, max_pending_bytes=4096)
    big = _feed(0.0, rows=100)  # 1600 bytes
    for _ in range(10):
        window.offer(big)
    assert len(window.take()) == 3  # kept until 4096 bytes were held
    window = LiveWindow(_reference(), rows=10)  # 10 rows * 4 elements * 8 bytes = 320
    for _ in range(30):
        window.offer(_feed(0.0))
    assert len(window.take()) == 20  # float32 rows: 16 bytes each


def test_the_ring_keeps_the_newest_rows() -> None:
    window = LiveWindow(_reference(), rows=5)
    assert window.absorb([_feed(1.0, rows=3)]) == 3 and window.held == 3
    assert window.absorb([_feed(2.0, rows=2), _feed(3.0, rows=2)]) == 4
    assert window.held == 5
    assert sorted(window.values()[:, 0].tolist()) == [1.0, 2.0, 2.0, 3.0, 3.0]
    window.absorb([_feed(4.0, rows=9)])
    assert window.values()[:, 0].tolist() == [4.0] * 5
    window.absorb([{"x": np.full((2, 4), np.nan, np.float32)}])  # non-finite: left out
    assert window.held == 5
