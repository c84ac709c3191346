"""Runtime instances in worker processes, supervised: a crash fails fast and restarts.

Each worker is a ``spawn``-ed process that loads the runtime itself (through
``maas.runtimes.discovery.load_runtime``) and answers predict calls over a ``Pipe``.
Pickle on that pipe is safe: both ends are this program; nothing user-uploaded is
unpickled. In the server, one thread per worker waits on its pipe (threads are made
once, never per request) and watches the process sentinel too, so a worker killed by a
signal, a segfault or ``os._exit`` fails its request with ``WorkerCrashedError`` at
once; the next call on that slot starts a replacement first. A worker that keeps dying
(``RestartPolicy``) is restarted after a delay that doubles with each crash in a row,
calls failing fast meanwhile (503 with Retry-After), and after ``give_up_after`` crashes in
a row its slot stays down: ``ProcessInstancePool.failed`` says why, and the server takes
the version out of service (other versions are not affected).

A worker runs the model's own code (TorchScript is a program), so once the model has
loaded it gives up what it can (``_drop_privileges``): no new privileges ever (setuid
binaries stop working), and, where the server runs as root, the ``nobody`` user, who can
write neither the artifact store nor the server's home. A server run as an ordinary
user keeps that user's rights in its workers: run maas as a user of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import multiprocessing
import os
import pwd
import signal
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Final

import numpy as np

from maas.errors import MaasError, ModelError, UnavailableError, WorkerCrashedError, describe
from maas.runtimes.base import LoadOptions
from maas.scheduling.slots import InstanceSlots

__all__ = ["ProcessInstancePool", "RestartPolicy", "WorkerBudget"]

#: How long a worker may take to import its framework and load the model.
LOAD_TIMEOUT_S: Final = 300.0
#: How long a worker gets to exit on close before it is killed.
STOP_TIMEOUT_S: Final = 5.0
#: Who a worker of a server run as root becomes once its model has loaded.
WORKER_USER: Final = "nobody"
_PR_SET_NO_NEW_PRIVS: Final = 38

Feed = dict[str, np.ndarray]


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """How a crashed worker comes back: at once the first time; after ``first_delay_s``
    doubling up to ``max_delay_s`` for each further crash in a row; never after
    ``give_up_after`` crashes in a row. A worker up for ``stable_s`` starts a new row."""

    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    give_up_after: int = 6
    stable_s: float = 60.0

    def delay_s(self, crashes: int) -> float:
        """The wait before restarting after ``crashes`` crashes in a row (1: none)."""
        if crashes <= 1:
            return 0.0
        return float(min(self.first_delay_s * 2.0 ** (crashes - 2), self.max_delay_s))


class WorkerBudget:
    """How many worker processes one server may run at once, over all its versions: each
    is a process of its own (a TorchScript one holds ~200 MB), so a config cannot ask for
    more than the machine holds. A pool reserves its workers before it starts any, and
    restarts them as ``restart`` says."""

    def __init__(self, limit: int, restart: RestartPolicy | None = None) -> None:
        self.limit = limit
        self.restart = restart or RestartPolicy()
        self._used = 0
        self._lock = threading.Lock()

    def reserve(self, count: int) -> None:
        with self._lock:
            if self._used + count > self.limit:
                raise UnavailableError(
                    f"{count} more worker processes would exceed this server's bound of "
                    f"{self.limit} (MAAS_MAX_WORKER_PROCESSES; {self._used} run now)",
                    {"field": "instances.count"},
                )
            self._used += count

    def release(self, count: int) -> None:
        with self._lock:
            self._used = max(0, self._used - count)


def _serve(conn: Connection, artifact_format: str, path: str, options: LoadOptions) -> None:
    """The worker's main: load, say ready, then answer one request at a time until EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the server; it stops us
    from maas.runtimes.discovery import load_runtime

    try:
        runtime = load_runtime(artifact_format, Path(path), options)
    except BaseException as exc:
        _reply(conn, "error", exc)
        return
    try:
        _drop_privileges()
    except OSError as exc:
        _reply(conn, "error", UnavailableError(f"the worker could not drop privileges: {exc}"))
        return
    _reply(conn, "ready", None)
    while True:
        try:
            feed = conn.recv()
        except (EOFError, OSError):  # the server closed the pipe or died: stop
            return
        if feed is None:
            return
        try:
            outputs = runtime.predict(feed)
        except Exception as exc:
            _reply(conn, "error", exc)
        else:
            _reply(conn, "ok", outputs)


def _drop_privileges() -> None:
    """No new privileges; off root, to ``WORKER_USER``, where the server runs as root."""
    prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)  # Linux only
    if prctl is not None and prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam(WORKER_USER)
    except KeyError:
        return  # no such user here: no_new_privs is what this system allows
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)


def _reply(conn: Connection, status: str, value: Any) -> None:
    try:
        conn.send((status, value))
    except (TypeError, AttributeError, ValueError) as exc:  # unpicklable exception or output
        if status == "ok":
            conn.send(("error", MaasError(f"the model's outputs cannot be sent back: {exc}")))
        else:
            conn.send(("error", ModelError(f"the model failed: {describe(value)}")))


class _Worker:
    """One instance slot: its process (restarted as needed) and the thread that talks to it."""

    def __init__(
        self, index: int, spec: tuple[str, str, LoadOptions], restart: RestartPolicy
    ) -> None:
        self.index = index
        self._spec = spec
        self._restart_policy = restart
        self.executor = ThreadPoolExecutor(1, thread_name_prefix=f"maas-worker-{index}")
        self.process: BaseProcess | None = None
        self._conn: Connection | None = None
        self.closing = threading.Event()
        self.crashes = 0  # in a row
        self.failed: str | None = None  # set once it crashed give_up_after times in a row
        self._started_at_s = 0.0
        self._not_before_s = 0.0

    def call(self, feed: Mapping[str, np.ndarray]) -> Feed:
        """Run on ``executor``: ensure the process is up, send ``feed``, await the reply."""
        conn = self.ensure_started()
        try:
            conn.send(dict(feed))
        except (BrokenPipeError, ConnectionError, EOFError):
            raise self._crashed() from None
        status, value = self._receive(conn, timeout_s=None)
        if status == "ok":
            return value  # type: ignore[no-any-return]  # what the worker's predict returned
        raise value

    def ensure_started(self) -> Connection:
        if self.closing.is_set():
            raise UnavailableError("the instance pool is closed")
        if self._conn is not None and self.process is not None and self.process.is_alive():
            return self._conn
        if self.process is not None:  # it died between calls: a crash like any other
            self._crashed()
        self._reap()
        if self.failed is not None:
            raise WorkerCrashedError(self.failed, {"crashes": self.crashes})
        wait_s = self._not_before_s - time.monotonic()
        if wait_s > 0:
            raise WorkerCrashedError(
                f"the worker process crashed {self.crashes} times in a row; it is restarted "
                f"in {wait_s:.1f} s",
                {"crashes": self.crashes, "retry_after_s": round(wait_s, 3)},
            )
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        artifact_format, path, options = self._spec
        process = context.Process(
            target=_serve,
            args=(child, artifact_format, path, options),
            name=f"maas-worker-{self.index}",
            daemon=True,  # never outlive the server
        )
        process.start()
        child.close()
        self.process, self._conn = process, parent
        self._started_at_s = time.monotonic()
        if self.closing.is_set():  # close() ran while we started it
            self.stop()
        status, value = self._receive(parent, timeout_s=LOAD_TIMEOUT_S)
        if status != "ready":
            self._reap()
            raise value
        return parent

    def _receive(self, conn: Connection, timeout_s: float | None) -> tuple[str, Any]:
        assert self.process is not None
        ready = wait([conn, self.process.sentinel], timeout_s)
        if not ready:
            self.stop()
            raise WorkerCrashedError(f"worker {self.index} did not load within {timeout_s} s")
        if conn in ready:
            try:
                reply: tuple[str, Any] = conn.recv()
            except (EOFError, OSError):
                raise self._crashed() from None
            return reply
        raise self._crashed()

    def _crashed(self) -> MaasError:
        code = None
        if self.process is not None:
            self.process.join(STOP_TIMEOUT_S)  # it is dead or dying: collect its exit code
            code = self.process.exitcode
        self._reap()
        if self.closing.is_set():
            return UnavailableError("the instance pool is closed")
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"
        policy = self._restart_policy
        stable = time.monotonic() - self._started_at_s >= policy.stable_s
        self.crashes = 1 if stable else self.crashes + 1
        if self.crashes >= policy.give_up_after:
            self.failed = (
                f"its worker process crashed {self.crashes} times in a row (last: {how}); "
                "it is no longer restarted"
            )
            return WorkerCrashedError(self.failed, {"exitcode": code, "crashes": self.crashes})
        delay_s = policy.delay_s(self.crashes)
        self._not_before_s = time.monotonic() + delay_s
        if delay_s == 0:
            with contextlib.suppress(RuntimeError):  # executor already shut down
                self.executor.submit(self._restart)  # right after this call, on this thread
        return WorkerCrashedError(
            f"the worker process running this request died ({how}); it is being restarted"
            + (f" in {delay_s:.1f} s" if delay_s else ""),
            {"exitcode": code, "crashes": self.crashes}
            | ({"retry_after_s": delay_s} if delay_s else {}),
        )

    def _reap(self) -> None:
        """Close the pipe and collect the process, so no zombie is left."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self.process is not None:
            self.process.join(STOP_TIMEOUT_S)
            if self.process.is_alive():
                self.process.kill()
                self.process.join()
            self.process.close()
            self.process = None

    def _restart(self) -> None:
        """Start the replacement eagerly; a failure here is met again by the next call."""
        with contextlib.suppress(Exception):
            self.ensure_started()

    def stop(self) -> None:
        """Terminate the process now (from any thread); the slot thread sees it die."""
        process = self.process
        if process is not None:
            with contextlib.suppress(ValueError, AttributeError):  # already closed
                process.terminate()


class ProcessInstancePool:
    """``count`` worker processes, each loading the artifact with its own runtime.

    Example::

        pool = ProcessInstancePool("onnx", Path("model.onnx"), LoadOptions(), count=2)
        await pool.ready()
        outputs = await pool.run({"input": x})
        await pool.close()
    """

    def __init__(
        self,
        artifact_format: str,
        path: Path,
        options: LoadOptions,
        count: int,
        budget: WorkerBudget | None = None,
        restart: RestartPolicy | None = None,
    ) -> None:
        if count < 1:
            raise ValueError("a pool needs at least one worker")
        if budget is not None:
            budget.reserve(count)
        self._budget = budget
        spec = (artifact_format, str(path), options)
        restart = restart or (budget.restart if budget is not None else RestartPolicy())
        self._workers = [_Worker(i, spec, restart) for i in range(count)]
        self._slots = InstanceSlots(count)
        # Start every worker now, in its own slot thread: calls queue behind the load.
        self._starting: list[Future[Connection]] = [
            w.executor.submit(w.ensure_started) for w in self._workers
        ]

    @property
    def capacity(self) -> int:
        return len(self._workers)

    @property
    def failed(self) -> str | None:
        """Why the pool cannot serve any more (every worker gave up), else None."""
        reasons = [w.failed for w in self._workers]
        return reasons[0] if all(reasons) else None

    @property
    def pids(self) -> list[int | None]:
        """The worker process ids (None while one is being replaced); for tests and ops."""
        return [None if w.process is None else w.process.pid for w in self._workers]

    async def ready(self) -> None:
        """Wait until every worker has loaded; raises the first load error."""
        await asyncio.gather(*(asyncio.wrap_future(f) for f in self._starting))

    async def run(self, feed: Mapping[str, np.ndarray]) -> Feed:
        """Run one batch on a free worker; ``WorkerCrashedError`` if it dies meanwhile."""
        index = await self._slots.acquire()
        worker = self._workers[index]
        try:
            return await asyncio.get_running_loop().run_in_executor(
                worker.executor, worker.call, feed
            )
        finally:
            self._slots.release(index)

    async def close(self) -> None:
        """Terminate every worker and wait for them, leaving no zombie."""
        for worker in self._workers:
            worker.closing.set()
            worker.stop()
        await asyncio.to_thread(self._join)
        if self._budget is not None:
            self._budget.release(len(self._workers))
            self._budget = None

    def _join(self) -> None:
        for worker in self._workers:
            worker.executor.submit(worker._reap)
            worker.executor.shutdown(wait=True)
