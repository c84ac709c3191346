"""Instance pools with real ONNX Runtime instances, in threads and worker processes."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pwd
import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from maas.errors import WorkerCrashedError
from maas.protocol.signature import Signature
from maas.runtimes.base import LoadOptions, Runtime
from maas.runtimes.onnx import OnnxRuntime
from maas.scheduling.policy import BatchingPolicy, InstancePolicy
from maas.scheduling.pool import ThreadInstancePool, build_pool
from maas.scheduling.scheduler import VersionScheduler
from maas.scheduling.workers import ProcessInstancePool, RestartPolicy
from maas.testing.models import write_linear_model, write_slow_model


@pytest.fixture
def linear(tmp_path: Path) -> Path:
    return write_linear_model(tmp_path / "linear.onnx")


def test_thread_pool_matches_direct_predict(linear: Path) -> None:
    direct = OnnxRuntime.load(linear)
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)

    async def main() -> None:
        pool = build_pool("onnx", linear, OnnxRuntime, InstancePolicy(count=2))
        assert isinstance(pool, ThreadInstancePool)
        assert pool.capacity == 2
        scheduler = VersionScheduler(pool, BatchingPolicy(), batchable=True)
        feeds = [{"input": x[i : i + 1]} for i in range(5)]
        results = await asyncio.gather(*(scheduler.submit(f) for f in feeds))
        await scheduler.close()
        np.testing.assert_allclose(
            np.concatenate([r["logits"] for r in results]),
            direct.predict({"input": x})["logits"],
            rtol=1e-6,
        )

    asyncio.run(main())


def test_process_pool_survives_a_killed_worker(linear: Path) -> None:
    x = np.ones((2, 4), np.float32)
    expected = OnnxRuntime.load(linear).predict({"input": x})["logits"]

    async def main() -> None:
        pool = ProcessInstancePool("onnx", linear, LoadOptions(intra_op_threads=1), count=1)
        try:
            await pool.ready()
            np.testing.assert_allclose((await pool.run({"input": x}))["logits"], expected)
            (pid,) = pool.pids
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.2)  # dead before the next call: replaced transparently
            np.testing.assert_allclose((await pool.run({"input": x}))["logits"], expected)
            assert pool.pids != [pid]
        finally:
            await pool.close()
        assert pool.pids == [None]
        assert not multiprocessing.active_children()  # no worker, no zombie left

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_worker_that_keeps_crashing_backs_off_then_gives_up(linear: Path) -> None:
    x = np.ones((1, 4), np.float32)
    policy = RestartPolicy(first_delay_s=0.3, max_delay_s=0.3, give_up_after=3, stable_s=60)

    async def kill_and_call(pool: ProcessInstancePool) -> None:
        (pid,) = pool.pids
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.2)  # dead before the call

    async def main() -> None:
        pool = ProcessInstancePool("onnx", linear, LoadOptions(intra_op_threads=1), 1, None, policy)
        try:
            await pool.ready()
            await kill_and_call(pool)
            await pool.run({"input": x})  # the first crash: restarted at once
            await kill_and_call(pool)
            with pytest.raises(WorkerCrashedError) as backing_off:
                await pool.run({"input": x})  # the second in a row: restarted after a delay
            assert backing_off.value.details["retry_after_s"] == pytest.approx(0.3)
            assert backing_off.value.details["crashes"] == 2
            await asyncio.sleep(0.35)
            await pool.run({"input": x})  # the delay passed: up again
            assert pool.failed is None
            await kill_and_call(pool)
            with pytest.raises(WorkerCrashedError, match="3 times in a row"):
                await pool.run({"input": x})
            assert pool.failed is not None and "no longer restarted" in pool.failed
            with pytest.raises(WorkerCrashedError):  # and it stays down
                await pool.run({"input": x})
            assert pool.pids == [None]
        finally:
            await pool.close()

    asyncio.run(asyncio.wait_for(main(), 60))


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_a_worker_gives_up_its_privileges_once_its_model_has_loaded(linear: Path) -> None:
    """The model's code runs without new privileges and, under a root server, as nobody."""
    x = np.ones((1, 4), np.float32)

    async def main() -> dict[str, str]:
        pool = ProcessInstancePool("onnx", linear, LoadOptions(intra_op_threads=1), count=1)
        try:
            await pool.ready()
            await pool.run({"input": x})  # it still predicts afterwards
            (pid,) = pool.pids
            assert pid is not None
            return _status(pid)
        finally:
            await pool.close()

    status = asyncio.run(asyncio.wait_for(main(), 60))
    assert status["NoNewPrivs"].strip() == "1"
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        assert [int(uid) for uid in status["Uid"].split()] == [nobody.pw_uid] * 4
        assert [int(gid) for gid in status["Gid"].split()] == [nobody.pw_gid] * 4


def test_process_pool_fails_the_request_in_flight_when_its_worker_dies(tmp_path: Path) -> None:
    slow = write_slow_model(tmp_path / "slow.onnx", iterations=10_000)
    x = np.full((1, 4), 0.25, np.float32)  # sum 1: 10k loop trips, seconds

    async def main() -> None:
        pool = ProcessInstancePool("onnx", slow, LoadOptions(intra_op_threads=1), count=1)
        try:
            await pool.ready()
            (pid,) = pool.pids
            assert pid is not None
            in_flight = asyncio.create_task(pool.run({"x": x}))
            await asyncio.sleep(0.3)
            killed_at = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            with pytest.raises(WorkerCrashedError, match="signal 9"):
                await in_flight
            assert time.monotonic() - killed_at < 3
            x_fast = np.zeros((1, 4), np.float32)
            restarted = await pool.run({"x": x_fast})  # the replacement answers
            np.testing.assert_array_equal(restarted["y"], x_fast)
        finally:
            await pool.close()

    asyncio.run(asyncio.wait_for(main(), 60))


class _WaitingRuntime(Runtime):
    """Sleeps in predict (no CPU: like a thread waiting for the GIL after a fast run), and
    records the thread each call ran on."""

    format = "test"
    platform = "test"

    def __init__(self, *, on_cpu: bool = True) -> None:
        super().__init__(Signature((), ()))
        self.threads: list[str] = []
        self._on_cpu = on_cpu

    @classmethod
    def load(cls, path: Path, options: LoadOptions = LoadOptions()) -> _WaitingRuntime:
        return cls()

    @property
    def on_cpu(self) -> bool:
        return self._on_cpu

    def predict(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.threads.append(threading.current_thread().name)
        time.sleep(0.003)
        return {}


def _threads_of_three_runs(runtime: _WaitingRuntime) -> list[str]:
    async def main() -> None:
        pool = ThreadInstancePool([runtime], inline_max_s=0.0002)
        for _ in range(3):
            await pool.run({})
        await pool.close()

    asyncio.run(main())
    return runtime.threads


def test_a_run_that_only_waited_on_its_thread_does_not_keep_a_fast_model_off_the_loop() -> None:
    """Regression: the first run (on the instance's thread) was timed by the wall clock,
    so a wait for the GIL there made a 20 µs model look slow and it never ran inline."""
    first, *rest = _threads_of_three_runs(_WaitingRuntime())
    assert first.startswith("maas-instance-")
    assert rest == [threading.main_thread().name] * 2


def test_a_runtime_waiting_on_an_accelerator_never_runs_on_the_loop() -> None:
    threads = _threads_of_three_runs(_WaitingRuntime(on_cpu=False))
    assert all(name.startswith("maas-instance-") for name in threads)


needs_two_cores = pytest.mark.skipif(
    (os.cpu_count() or 1) < 2, reason="with one core every instance has one thread anyway"
)


@needs_two_cores
def test_a_model_whose_full_batch_runs_on_the_loop_gets_one_thread(linear: Path) -> None:
    probe = {"input": np.ones((32, 4), np.float32)}
    pool = build_pool("onnx", linear, OnnxRuntime, InstancePolicy(), probes=[probe])
    assert isinstance(pool, ThreadInstancePool)
    assert pool.intra_op_threads == 1
    asyncio.run(pool.close())


@needs_two_cores
def test_a_slow_model_keeps_every_core(tmp_path: Path) -> None:
    slow = write_slow_model(tmp_path / "slow.onnx")
    probe = {"input": np.ones((1, 4), np.float32)}
    pool = build_pool("onnx", slow, OnnxRuntime, InstancePolicy(), probes=[probe])
    assert isinstance(pool, ThreadInstancePool)
    assert pool.intra_op_threads == os.cpu_count()
    asyncio.run(pool.close())


@needs_two_cores
def test_threads_set_in_the_config_or_without_a_probe_are_kept(linear: Path) -> None:
    probe = {"input": np.ones((32, 4), np.float32)}
    for policy, given in ((InstancePolicy(intra_op_threads=2), probe), (InstancePolicy(), None)):
        pool = build_pool("onnx", linear, OnnxRuntime, policy, probes=[given] if given else [])
        assert isinstance(pool, ThreadInstancePool)
        assert pool.intra_op_threads == (2 if given else os.cpu_count())
        asyncio.run(pool.close())
