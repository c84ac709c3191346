"""The webhook notifier: retries with backoff, bounded attempts and queue, deduplication,
and the Alertmanager-shaped body. The HTTP transport is the seam (httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import httpx

from maas.monitoring.alert_rules import Delivery
from maas.monitoring.alerts import Alert
from maas.monitoring.notify import WebhookNotifier, webhook_payload

FIRING = Alert(
    "slow",
    "latency_p99",
    "critical",
    "digits",
    "3",
    "firing",
    0.9,
    0.5,
    since=1_700_000_000.0,
    fired_at=1_700_000_010.0,
)
RESOLVED = Alert(
    "slow",
    "latency_p99",
    "critical",
    "digits",
    "3",
    "resolved",
    0.1,
    0.5,
    since=1_700_000_000.0,
    fired_at=1_700_000_010.0,
    resolved_at=1_700_000_070.5,
)
FAST = Delivery(timeout_s=1, attempts=3, backoff_s=0.01, max_backoff_s=0.02, max_pending=10)


def _run(
    delivery: Delivery,
    answer: Callable[[httpx.Request], Coroutine[None, None, httpx.Response]],
    scenario: Callable[[WebhookNotifier], Awaitable[None]],
) -> WebhookNotifier:
    async def main() -> WebhookNotifier:
        client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
        notifier = WebhookNotifier(delivery, client=client)
        running = asyncio.create_task(notifier.run())
        try:
            await scenario(notifier)
        finally:
            running.cancel()
            await notifier.aclose()
        return notifier

    return asyncio.run(main())


async def _until(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


def test_a_failing_receiver_gets_it_once_it_accepts() -> None:
    bodies: list[dict[str, Any]] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        if len(bodies) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(500 if len(bodies) == 2 else 200)

    async def scenario(notifier: WebhookNotifier) -> None:
        notifier.submit(FIRING, ["http://hooks.test/a"])
        await _until(lambda: notifier.counts["sent"] == 1)
        await asyncio.sleep(0.1)  # nothing more comes

    notifier = _run(FAST, answer, scenario)
    assert len(bodies) == 3 and all(b == bodies[0] for b in bodies)
    assert notifier.counts == {"sent": 1, "failed": 0} and notifier.pending == 0


def test_attempts_are_bounded_and_counted_failed() -> None:
    calls: list[float] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        calls.append(time.monotonic())
        return httpx.Response(503)

    async def scenario(notifier: WebhookNotifier) -> None:
        notifier.submit(FIRING, ["http://hooks.test/a"])
        await _until(lambda: notifier.counts["failed"] == 1)
        await asyncio.sleep(0.1)

    notifier = _run(FAST, answer, scenario)
    assert len(calls) == FAST.attempts
    assert calls[1] - calls[0] >= FAST.backoff_s and calls[2] - calls[1] >= FAST.max_backoff_s
    assert notifier.counts == {"sent": 0, "failed": 1} and notifier.pending == 0


def test_the_same_firing_is_never_sent_twice_but_its_resolution_is_sent() -> None:
    statuses: list[tuple[str, str]] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        statuses.append((request.url.path, json.loads(request.content)["status"]))
        return httpx.Response(204)

    async def scenario(notifier: WebhookNotifier) -> None:
        for _ in range(3):
            notifier.submit(FIRING, ["http://hooks.test/a", "http://hooks.test/b"])
        notifier.submit(RESOLVED, ["http://hooks.test/a", "http://hooks.test/b"])
        notifier.submit(RESOLVED, ["http://hooks.test/a"])
        await _until(lambda: notifier.counts["sent"] == 4)
        await asyncio.sleep(0.05)

    notifier = _run(FAST, answer, scenario)
    assert sorted(statuses) == [
        ("/a", "firing"),
        ("/a", "resolved"),
        ("/b", "firing"),
        ("/b", "resolved"),
    ]
    assert notifier.counts == {"sent": 4, "failed": 0}


def test_a_receiver_that_hangs_bounds_the_queue_and_blocks_nothing() -> None:
    release = asyncio.Event()
    bounded = Delivery(timeout_s=5, attempts=1, backoff_s=1, max_pending=3)

    async def answer(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200)

    async def scenario(notifier: WebhookNotifier) -> None:
        for i in range(10):
            alert = Alert("r", "drift", "warning", "m", str(i), "firing", 1, 0.5, since=float(i))
            notifier.submit(alert, ["http://hooks.test/a"])
        # submit only queues (no await since): 3 wait, the rest are dropped
        assert notifier.pending == 3 and notifier.counts["failed"] == 7
        release.set()
        await _until(lambda: notifier.counts["sent"] == 3)

    notifier = _run(bounded, answer, scenario)
    assert notifier.counts == {"sent": 3, "failed": 7}


def test_the_body_is_shaped_like_alertmanagers() -> None:
    firing = webhook_payload(FIRING)
    assert firing["version"] == "4" and firing["status"] == "firing"
    assert firing["receiver"] == "maas" and firing["groupLabels"] == {"alertname": "slow"}
    (alert,) = firing["alerts"]
    assert alert["status"] == "firing"
    assert alert["labels"] == {
        "alertname": "slow",
        "rule": "slow",
        "kind": "latency_p99",
        "severity": "critical",
        "model": "digits",
        "version": "3",
    }
    assert alert["annotations"]["summary"] == "digits version 3: p99 latency above 0.5s"
    assert alert["annotations"]["value"] == "0.9"
    assert alert["startsAt"] == "2023-11-14T22:13:20.000Z"
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert len(alert["fingerprint"]) == 16
    resolved = webhook_payload(RESOLVED)
    assert resolved["status"] == "resolved"
    assert resolved["alerts"][0]["endsAt"] == "2023-11-14T22:14:30.500Z"
    assert resolved["alerts"][0]["fingerprint"] == alert["fingerprint"]
