"""A graceful SIGTERM: not ready at once, serving on for a grace period, then drained.

uvicorn answers SIGTERM by closing its listener at once, so a load balancer polling
``/v2/health/ready`` sees the port refuse before it ever sees the server go unready, and
sends traffic there until then. ``DrainingServer`` instead, on the first SIGTERM:

1. drains the app (``Drainable.drain``): ``/v2/health/ready`` answers 503 and gRPC
   ServerReady not ready, at once;
2. goes on accepting and serving for ``grace_s`` (``MAAS_SHUTDOWN_GRACE_S``), long
   enough for a balancer to notice;
3. then shuts down as uvicorn does: stops accepting, closes idle connections, lets
   requests in flight finish for up to ``timeout_graceful_shutdown``
   (``MAAS_SHUTDOWN_DRAIN_S``) before cancelling them, and runs the app's shutdown;
4. exits with status 0 (uvicorn would raise the signal again once it has stopped, so
   the process died of SIGTERM); a second SIGTERM skips what is left of the grace.

SIGINT (Ctrl-C) keeps uvicorn's meaning: stop now. ``DrainingWorkers`` is uvicorn's
supervisor for ``--workers N`` whose processes run a ``DrainingServer``; it passes
SIGTERM to each, so every worker drains the same way.
"""

from __future__ import annotations

import logging
import signal
import socket
import time
from types import FrameType
from typing import Protocol, runtime_checkable

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

__all__ = ["Drainable", "DrainingServer", "DrainingWorkers"]

log = logging.getLogger(__name__)


@runtime_checkable
class Drainable(Protocol):
    def drain(self) -> None:
        """Report not ready from now on, and go on serving."""


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, grace_s: float) -> None:
        super().__init__(config)
        self._grace_s = grace_s
        self._stop_at: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM:
            super().handle_exit(sig, frame)
            return
        if self._stop_at is not None or not self.started:
            self.should_exit = True  # a second SIGTERM, or one before serving began
            return
        self.begin_drain()

    def begin_drain(self) -> None:
        """Turn unready now and stop serving after the grace period."""
        app = self.config.loaded_app
        if isinstance(app, Drainable):
            app.drain()
        self._stop_at = time.monotonic() + self._grace_s
        log.info("draining: not ready; accepting for %s s more, then stopping", self._grace_s)

    async def on_tick(self, counter: int) -> bool:
        if self._stop_at is not None and time.monotonic() >= self._stop_at:
            self.should_exit = True
        return await super().on_tick(counter)


class _DrainingProcess(Process):
    """A worker process whose server is a ``DrainingServer``."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket], grace_s: float):
        self._grace_s = grace_s
        super().__init__(config, sockets)

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = DrainingServer(self.config, self._grace_s)
        return self._server


class DrainingWorkers(Multiprocess):
    """uvicorn's supervisor (restarts, SIGHUP, TTIN/TTOU as uvicorn 0.55 has them) with
    ``DrainingServer`` workers. On SIGTERM it signals every worker and closes its own copy
    of the listening socket, so the port closes when the last worker stops accepting."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket], grace_s: float):
        super().__init__(config, sockets)
        self._grace_s = grace_s

    def _new_process(self) -> Process:
        process = _DrainingProcess(self.config, self.sockets, self._grace_s)
        process.start()
        return process

    def init_processes(self) -> None:
        self.processes = [self._new_process() for _ in range(self.processes_num)]

    def terminate_all(self) -> None:
        super().terminate_all()
        for sock in self.sockets:
            sock.close()

    def restart_all(self) -> None:
        """Replace each worker, its replacement serving before the old one stops."""
        for index, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._new_process()
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                if not self.should_exit.is_set():
                    log.error("worker [%s] was not ready in time; restart aborted", new.pid)
                return
            old.terminate()
            old.join()
            self.processes[index] = new

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for index, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung: kill it
            process.join()
            if process.exitcode == STARTUP_FAILURE:  # it would fail again
                log.error("worker [%s] failed to start; stopping", process.pid)
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            log.info("worker [%s] died; starting another", process.pid)
            self.processes[index] = self._new_process()
