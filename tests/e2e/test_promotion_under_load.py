"""Promote, roll back and refuse a broken version while clients never stop sending.

A real ``maas serve`` process; four REST clients (httpx) and two gRPC clients
(tritonclient.grpc) send requests to the default route one after another throughout.
The test promotes version 2, rolls back to version 1, then tries to promote version 3,
whose stored file is corrupted. Every request must succeed; each answers from the
version production pointed at when it was sent; version 3 never answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from maas.control.uploads import register_upload
from maas.registry import Registry
from maas.store import LocalStore
from maas.testing.models import corrupt_stored_artifact, write_linear_model
from maas.testing.processes import ServerProcess, serve_process

pytestmark = pytest.mark.e2e

REST_CLIENTS = 4
GRPC_CLIENTS = 2
#: Answers to wait for after each step, so every step happens under load.
ANSWERS_PER_STEP = 150


@dataclass(frozen=True, slots=True)
class Answer:
    transport: str
    sent_s: float
    answered_s: float
    version: str  # "" when the request failed
    error: str = ""


class Clients:
    """The six clients, each a thread sending one request after another."""

    def __init__(self, server: ServerProcess) -> None:
        self._server = server
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.answers: list[Answer] = []
        self._threads = [
            threading.Thread(target=self._rest, daemon=True) for _ in range(REST_CLIENTS)
        ] + [threading.Thread(target=self._grpc, daemon=True) for _ in range(GRPC_CLIENTS)]

    def snapshot(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)

    def wait_for_answers_sent_after(
        self, since_s: float, count: int, timeout_s: float = 60
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while sum(a.sent_s > since_s for a in self.snapshot()) < count:
            assert time.monotonic() < deadline, f"fewer than {count} answers in {timeout_s} s"
            time.sleep(0.05)

    def _record(self, transport: str, send: Callable[[], str]) -> None:
        while not self._stop.is_set():
            sent = time.monotonic()
            try:
                answer = Answer(transport, sent, time.monotonic(), send())
            except Exception as exc:  # every failure is counted; nothing is retried
                answer = Answer(transport, sent, time.monotonic(), "", repr(exc)[:300])
            with self._lock:
                self.answers.append(answer)

    def _rest(self) -> None:
        body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [1] * 4}]}
        with httpx.Client(base_url=self._server.url, timeout=30) as client:

            def send() -> str:
                reply = client.post("/v2/models/linear/infer", json=body)
                if reply.status_code != 200:
                    raise RuntimeError(f"{reply.status_code} {reply.text}")
                version: str = reply.json()["model_version"]
                return version

            self._record("rest", send)

    def _grpc(self) -> None:
        client = grpcclient.InferenceServerClient(self._server.grpc)
        tensor = grpcclient.InferInput("input", [1, 4], "FP32")
        tensor.set_data_from_numpy(np.ones((1, 4), np.float32))

        def send() -> str:
            version: str = client.infer("linear", [tensor]).get_response().model_version
            return version

        try:
            self._record("grpc", send)
        finally:
            client.close()

    def __enter__(self) -> Clients:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """``linear`` versions 1 and 2, production on 1, and version 3 whose file is corrupted."""
    registry = Registry(f"sqlite:///{tmp_path}/maas.db", LocalStore(tmp_path / "artifacts"))
    registry.upgrade()
    try:
        for seed in (1, 2, 3):
            path = write_linear_model(tmp_path / f"v{seed}.onnx", seed=seed)
            version = register_upload(registry, "linear", path, actor="test")
        registry.aliases.set("linear", "production", 1, actor="test")
        corrupt_stored_artifact(tmp_path / "artifacts", version.artifact_sha256)
    finally:
        registry.close()
    return tmp_path


@pytest.fixture
def server(home: Path) -> Iterator[ServerProcess]:
    with (home / "server.log").open("wb") as log, serve_process(home, output=log) as found:
        yield found


def _timed(call: Callable[[], httpx.Response]) -> tuple[float, httpx.Response, float]:
    start = time.monotonic()
    reply = call()
    return start, reply, time.monotonic()


def test_promote_rollback_and_a_broken_promotion_under_continuous_load(
    server: ServerProcess, home: Path
) -> None:
    api = httpx.Client(base_url=server.url, timeout=120)
    try:
        with Clients(server) as clients:
            clients.wait_for_answers_sent_after(0.0, ANSWERS_PER_STEP)

            promote_s, reply, promoted_s = _timed(
                lambda: api.put("/api/models/linear/aliases/production", json={"version": 2})
            )
            assert reply.status_code == 200 and reply.json()["version"] == 2, reply.text
            clients.wait_for_answers_sent_after(promoted_s, ANSWERS_PER_STEP)

            rollback_s, reply, rolled_back_s = _timed(
                lambda: api.post("/api/models/linear/rollback", json={})
            )
            assert reply.status_code == 200 and reply.json()["version"] == 1, reply.text
            clients.wait_for_answers_sent_after(rolled_back_s, ANSWERS_PER_STEP)

            broken_s, reply, refused_s = _timed(
                lambda: api.post("/api/models/linear/promote", json={"version": 3})
            )
            assert reply.status_code == 409, reply.text
            assert reply.json()["code"] == "not_servable"
            assert "corrupted" in reply.json()["details"]["reason"]
            clients.wait_for_answers_sent_after(refused_s, ANSWERS_PER_STEP)
        answers = clients.snapshot()
        aliases = api.get("/api/models/linear").json()["aliases"]
        deployments = {r["version"]: r for r in api.get("/api/deployments").json()}
    finally:
        api.close()

    failed = [a for a in answers if a.error]
    log = (home / "server.log").read_text(errors="replace")[-3000:]
    assert not failed, (len(failed), failed[:3], log)
    print(
        f"{len(answers)} answers:",
        {t: sum(a.transport == t for a in answers) for t in ("rest", "grpc")},
    )

    def versions(after_s: float, before_s: float = float("inf")) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {"rest": set(), "grpc": set()}
        for a in answers:
            if a.sent_s > after_s and a.answered_s < before_s:
                found[a.transport].add(a.version)
        return found

    assert versions(0.0, promote_s) == {"rest": {"1"}, "grpc": {"1"}}
    assert versions(promoted_s, rollback_s) == {"rest": {"2"}, "grpc": {"2"}}
    assert versions(rolled_back_s, broken_s) == {"rest": {"1"}, "grpc": {"1"}}
    assert versions(broken_s) == {"rest": {"1"}, "grpc": {"1"}}  # during and after the refusal
    assert "3" not in {a.version for a in answers}
    assert aliases == {"production": 1}
    assert deployments[1]["state"] == "ready"
    assert deployments[3]["state"] == "failed" and "corrupted" in deployments[3]["reason"]
