"""Webhook notifications of alerts: one POST per firing and one per resolution, per URL,
retried with exponential backoff, never blocking the evaluation that submits them.

The body is shaped like Alertmanager's webhook (``version`` "4"), so receivers written
for Alertmanager read it unchanged; one alert per POST::

    {"version": "4", "status": "firing", "receiver": "maas",
     "groupKey": "{}:{alertname=\\"digits-slow\\"}", "truncatedAlerts": 0,
     "groupLabels": {"alertname": "digits-slow"}, "commonLabels": {...},
     "commonAnnotations": {...}, "externalURL": "",
     "alerts": [{"status": "firing",
                 "labels": {"alertname", "rule", "kind", "severity", "model", "version"},
                 "annotations": {"summary", "description", "value", "threshold"},
                 "startsAt": "2025-01-01T12:00:00.000Z", "endsAt": "0001-01-01T00:00:00Z",
                 "generatorURL": "", "fingerprint": "<16 hex>"}]}

A resolution carries ``status`` "resolved" and ``endsAt`` the time it resolved.

Bounded everywhere: ``submit`` only queues (at most ``max_pending`` deliveries waiting
or in flight; beyond that one is dropped, counted failed and logged), at most
``concurrency`` POSTs run at once, each under ``timeout_s``, and a delivery is tried
``attempts`` times. ``submit`` ignores a delivery it already took (the same URL, alert
instance, start and status), so a firing is never sent twice. Outcomes are counted per
delivery: ``sent`` (a 2xx answer) or ``failed`` (gave up, or dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx

from maas.monitoring.alert_rules import Delivery, redact_url
from maas.monitoring.alerts import Alert, iso_utc

__all__ = ["WebhookNotifier", "webhook_payload"]

log = logging.getLogger(__name__)

_NEVER: Final = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of an alert still firing
_REMEMBERED: Final = 10_000  # deliveries remembered for deduplication


def webhook_payload(alert: Alert) -> dict[str, Any]:
    """The JSON body POSTed for ``alert`` (firing, or resolved)."""
    status = "resolved" if alert.state == "resolved" else "firing"
    labels, annotations = alert.labels, alert.annotations
    ended = alert.resolved_at
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{alert.rule}"}}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "maas",
        "groupLabels": {"alertname": alert.rule},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "",
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": iso_utc(alert.since),
                "endsAt": iso_utc(ended) if status == "resolved" and ended is not None else _NEVER,
                "generatorURL": "",
                "fingerprint": hashlib.sha256(alert.fingerprint.encode()).hexdigest()[:16],
            }
        ],
    }


@dataclass(slots=True)
class _Delivery:
    url: str
    body: dict[str, Any]
    what: str  # for the log: "firing digits-slow/digits/1"
    attempt: int = 0


class WebhookNotifier:
    """Delivers alerts to webhooks in the background of ``run()`` (a task the server
    starts); ``counts`` holds the outcomes so far."""

    def __init__(
        self,
        delivery: Delivery,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        concurrency: int = 4,
    ) -> None:
        self.delivery = delivery
        self.client = client or httpx.AsyncClient(
            timeout=delivery.timeout_s, follow_redirects=False
        )
        self.clock = clock
        self.concurrency = concurrency
        self.counts = {"sent": 0, "failed": 0}
        self._due: list[tuple[float, int, _Delivery]] = []
        self._order = itertools.count()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._seen: OrderedDict[tuple[str, str, float, str], None] = OrderedDict()
        self._wake = asyncio.Event()

    @property
    def pending(self) -> int:
        """Deliveries waiting or in flight."""
        return len(self._due) + len(self._in_flight)

    def submit(self, alert: Alert, urls: Sequence[str]) -> None:
        """Queue ``alert`` (just fired or resolved) for each of ``urls``; never blocks."""
        status = "resolved" if alert.state == "resolved" else "firing"
        body = webhook_payload(alert)
        for url in urls:
            key = (url, alert.fingerprint, alert.since, status)
            if key in self._seen:
                continue
            self._seen[key] = None
            if len(self._seen) > _REMEMBERED:
                self._seen.popitem(last=False)
            what = f"{status} {alert.fingerprint} to {redact_url(url)}"
            if self.pending >= self.delivery.max_pending:
                self.counts["failed"] += 1
                log.warning("alert notification dropped (%d waiting): %s", self.pending, what)
                continue
            heapq.heappush(self._due, (self.clock(), next(self._order), _Delivery(url, body, what)))
        self._wake.set()

    async def run(self) -> None:
        """Send what is due, retrying on schedule, until cancelled."""
        while True:
            self._wake.clear()
            now = self.clock()
            while self._due and self._due[0][0] <= now and len(self._in_flight) < self.concurrency:
                _, _, delivery = heapq.heappop(self._due)
                task = asyncio.create_task(self._attempt(delivery))
                self._in_flight.add(task)
                task.add_done_callback(self._finished)
            delay = None
            if self._due and len(self._in_flight) < self.concurrency:
                delay = max(0.0, self._due[0][0] - now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._wake.set()

    async def _attempt(self, delivery: _Delivery) -> None:
        delivery.attempt += 1
        try:
            response = await self.client.post(delivery.url, json=delivery.body)
            problem = None if response.is_success else f"HTTP {response.status_code}"
        except Exception as exc:  # refused, timed out, TLS, a bad URL: all worth a retry
            problem = type(exc).__name__
        if problem is None:
            self.counts["sent"] += 1
            return
        policy = self.delivery
        if delivery.attempt >= policy.attempts:
            self.counts["failed"] += 1
            log.warning(
                "alert notification failed %d times, giving up (%s): %s",
                delivery.attempt,
                problem,
                delivery.what,
            )
            return
        wait_s = min(policy.backoff_s * 2 ** (delivery.attempt - 1), policy.max_backoff_s)
        log.info(
            "alert notification failed (%s), retry in %.1f s: %s", problem, wait_s, delivery.what
        )
        heapq.heappush(self._due, (self.clock() + wait_s, next(self._order), delivery))

    async def aclose(self) -> None:
        """Stop sending (what is still queued is dropped) and close the HTTP client."""
        for task in list(self._in_flight):
            task.cancel()
        for task in list(self._in_flight):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._due.clear()
        await self.client.aclose()
