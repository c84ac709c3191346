"""Steady REST traffic to a model's default route while a test changes what it serves."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

import httpx

__all__ = ["Answer", "DefaultRouteLoad", "linear_body", "wait_for"]


def linear_body(rows: int = 1) -> dict[str, object]:
    """An infer body for the FP32 [-1, 4] test models."""
    return {
        "inputs": [
            {
                "name": "input",
                "datatype": "FP32",
                "shape": [rows, 4],
                "data": [0.25 * (i % 4) for i in range(4 * rows)],
            }
        ]
    }


def wait_for(what: str, check: Callable[[], object], timeout_s: float = 15.0) -> None:
    """Poll ``check()`` until it is true; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


@dataclass(frozen=True, slots=True)
class Answer:
    """One request: when it was sent and answered (monotonic), status, version or error."""

    sent_s: float
    answered_s: float
    status: int
    version: str
    error: str = ""


class DefaultRouteLoad:
    """``threads`` clients sending one request after another to ``model``'s default route.

    >>> with DefaultRouteLoad(url, "m") as load:  # doctest: +SKIP
    ...     load.wait_for_answers(20)
    >>> {a.version for a in load.answers}  # doctest: +SKIP
    {'1'}
    """

    def __init__(self, base_url: str, model: str, threads: int = 3) -> None:
        self._url = f"{base_url}/v2/models/{model}/infer"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._answers: list[Answer] = []
        self._threads = [
            threading.Thread(target=self._run, name=f"load-{i}", daemon=True)
            for i in range(threads)
        ]

    @property
    def answers(self) -> list[Answer]:
        with self._lock:
            return list(self._answers)

    def wait_for_answers(self, more: int, timeout_s: float = 15.0) -> None:
        """Wait until ``more`` answers beyond those seen so far have come back."""
        wanted = len(self.answers) + more
        wait_for(f"{wanted} answers", lambda: len(self.answers) >= wanted, timeout_s)

    def _run(self) -> None:
        body = linear_body()
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    reply = client.post(self._url, json=body)
                    ok = reply.status_code == 200
                    answer = Answer(
                        sent,
                        time.monotonic(),
                        reply.status_code,
                        reply.json()["model_version"] if ok else "",
                        "" if ok else reply.text,
                    )
                except httpx.HTTPError as exc:  # counted as a failure, never retried
                    answer = Answer(sent, time.monotonic(), 0, "", repr(exc))
                with self._lock:
                    self._answers.append(answer)

    def __enter__(self) -> DefaultRouteLoad:
        for thread in self._threads:
            thread.start()
        self.wait_for_answers(len(self._threads))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
