"""Connection and request limits on uvicorn's httptools protocol, which has few of its own.

uvicorn bounds the idle time between requests (``timeout_keep_alive``) and has
``limit_concurrency``, which answers *every* request 503 once that many connections are
open (health checks included), so it is no cap on connections. Measured on uvicorn 0.55
without this module: 500 connections sending their headers a byte at a time were held
as long as they kept sending; a body that stalled was never closed; three clients that
never read a 45 MB response pinned 190 MB for good; 20,000 silent connections used up
the file descriptors (``/v2/health/live`` failed); a 200 MB header was buffered whole.

``LimitedHttpProtocol`` adds, per connection (``HttpLimits``, from the settings):

* a cap on open connections: the one beyond ``max_connections`` is answered 503 and
  closed as it arrives, so it holds a descriptor for a moment only;
* ``max_header_bytes`` and ``max_header_count``: 431 and close; the bytes of an
  unfinished head are counted as they arrive, so a huge one is refused after at most
  one read (256 KiB) beyond the bound, never buffered whole;
* ``header_timeout_s``: a head must be complete this long after the connection opened,
  or after the first byte of a later request (before it, ``keep_alive_timeout_s``
  bounds the idle time): else 408 and close;
* ``body_timeout_s``: a body that makes no progress this long is answered 408 and
  closed (not while the server itself has paused reading, or owes a 100 Continue);
* ``write_timeout_s``: a client whose unread response stays over the transport's high
  water mark with no progress this long is dropped (``abort``), freeing the buffer.

Each timeout is logged at DEBUG (an attack would otherwise write a line per connection);
refused connections as one WARNING every 10 s at most, with their count.

The hot path pays almost nothing: a keep-alive request that arrives in one read arms no
timer (a timer is armed only when a read ends inside a head or a body, or when the
transport's buffer passes its high water mark); per request there is a ``len`` and a sum
in ``on_headers_complete`` and a few attribute reads per read. Measured: parsing a
keep-alive POST takes 4.5 µs here against 4.1 µs in uvicorn's own protocol.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from maas.config import Settings

__all__ = ["HttpLimits", "LimitedConfig", "LimitedHttpProtocol"]

log = logging.getLogger(__name__)

_WARN_EVERY_S = 10.0


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """What a REST connection may take (each field: the ``Settings`` field of the same
    name, where its default is)."""

    max_header_bytes: int
    max_header_count: int
    header_timeout_s: float
    body_timeout_s: float
    write_timeout_s: float
    keep_alive_timeout_s: float
    max_connections: int

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_header_count=settings.max_header_count,
            header_timeout_s=settings.header_timeout_s,
            body_timeout_s=settings.body_timeout_s,
            write_timeout_s=settings.write_timeout_s,
            keep_alive_timeout_s=settings.keep_alive_timeout_s,
            max_connections=settings.max_connections,
        )


class LimitedConfig(uvicorn.Config):
    """uvicorn's configuration serving ``LimitedHttpProtocol`` under ``limits``.

    WebSockets are off (maas has no WebSocket route; an upgrade is answered as HTTP).
    The limits travel with the configuration, so ``--workers`` processes get them too.
    """

    def __init__(self, app: Any, limits: HttpLimits, **options: Any) -> None:
        super().__init__(app, http=LimitedHttpProtocol, ws="none", **options)
        self.limits = limits
        self._refused = 0  # connections refused since the last warning
        self._warned_at = float("-inf")

    def note_refused_connection(self) -> None:
        """Count a connection refused over the cap; warn at most every 10 s (a flood
        would otherwise write a line per connection)."""
        self._refused += 1
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY_S:
            log.warning(
                "refused %d connection(s): %d are open (MAAS_MAX_CONNECTIONS)",
                self._refused,
                self.limits.max_connections,
            )
            self._refused, self._warned_at = 0, now


class _Refused(httptools.HttpParserError):
    """Raised in a parser callback to stop parsing a request that is refused."""


class LimitedHttpProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        if not isinstance(config, LimitedConfig):
            raise TypeError("LimitedHttpProtocol serves a LimitedConfig, which holds its limits")
        self._config = config
        limits = config.limits
        self._limits = limits
        # uvicorn declares it an int; call_later takes any number of seconds.
        self.timeout_keep_alive = limits.keep_alive_timeout_s  # type: ignore[assignment]
        self._read_timer: asyncio.TimerHandle | None = None
        self._timing_body = False  # what _read_timer times: a body (else a head)
        self._body_data_at = 0.0  # loop time of the body's last bytes
        self._write_timer: asyncio.TimerHandle | None = None
        self._write_backlog = 0  # buffered bytes when the write timer was armed
        self._head_bytes = 0  # bytes of the current head read before this read
        self._read_bytes = 0  # bytes of this read
        self._refusal: tuple[int, str] | None = None

    # -- connections ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self._limits.max_connections:
            self._config.note_refused_connection()
            self._refuse(503, "too many connections")
            return
        self._time_read(self._limits.header_timeout_s, body=False)

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._read_timer, self._write_timer):
            if timer is not None:
                timer.cancel()
        self._read_timer = self._write_timer = None
        super().connection_lost(exc)

    # -- reads: uvicorn's data_received, then where the connection waits now -------------

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        self._read_bytes = len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if self._refusal is not None:
                self._refuse(*self._refusal)
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        scope = self.scope
        if scope is not None and "method" not in scope:  # inside a request's head
            self._head_bytes += len(data)
            if self._head_bytes > self._limits.max_header_bytes:
                self._refuse(431, "request head too large")
            elif self._read_timer is None or self._timing_body:
                self._time_read(self._limits.header_timeout_s, body=False)
            return
        if self._head_bytes:
            self._head_bytes = 0
        cycle = self.cycle
        if cycle is not None and cycle.more_body and not cycle.response_complete:
            self._body_data_at = self.loop.time()
            if self._read_timer is None or not self._timing_body:
                self._time_read(self._limits.body_timeout_s, body=True)
        elif self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def on_headers_complete(self) -> None:
        limits = self._limits
        if len(self.headers) > limits.max_header_count:
            self._refusal = (431, f"more than {limits.max_header_count} headers")
            raise _Refused
        # This read and the head's earlier ones bound its size: sum it only past the bound.
        if (
            self._head_bytes + self._read_bytes > limits.max_header_bytes
            and _head_size(self.url, self.headers) > limits.max_header_bytes
        ):
            self._refusal = (431, "request head too large")
            raise _Refused
        HttpToolsProtocol.on_headers_complete(self)  # (what super() finds, without its cost)

    def _time_read(self, delay_s: float, *, body: bool) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
        self._timing_body = body
        self._read_timer = self.loop.call_later(delay_s, self._read_timed_out)

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        answering = cycle is not None and not cycle.response_complete
        if self._timing_body:
            if cycle is None or not answering or not cycle.more_body:
                return  # the body is in
            if self.flow.read_paused or cycle.waiting_for_100_continue:
                # The server is not reading (or owes 100 Continue): not the client's delay.
                self._time_read(self._limits.body_timeout_s, body=True)
                return
            idle_s = self.loop.time() - self._body_data_at
            if idle_s < self._limits.body_timeout_s:
                self._time_read(self._limits.body_timeout_s - idle_s, body=True)
                return
            log.debug("closed a connection whose request body stalled for %.0f s", idle_s)
            self._refuse(408, "request body timed out")
            return
        scope = self.scope
        if scope is not None and "method" in scope:
            return  # the head is in (a pipelined one may have begun since; timed anew)
        if answering:  # a pipelined head while an earlier request is answered: wait for it
            self._time_read(self._limits.header_timeout_s, body=False)
            return
        if scope is None:  # nothing was sent at all
            self.transport.close()
            return
        log.debug(
            "closed a connection whose request head took over %s s", self._limits.header_timeout_s
        )
        self._refuse(408, "request head timed out")

    # -- writes -------------------------------------------------------------------------

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._write_timer is None:
            self._write_backlog = self.transport.get_write_buffer_size()
            self._write_timer = self.loop.call_later(
                self._limits.write_timeout_s, self._write_timed_out
            )

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None

    def _write_timed_out(self) -> None:
        self._write_timer = None
        backlog = self.transport.get_write_buffer_size()
        if backlog == 0:
            return
        if backlog < self._write_backlog:  # the client reads, slowly: give it more time
            self._write_backlog = backlog
            self._write_timer = self.loop.call_later(
                self._limits.write_timeout_s, self._write_timed_out
            )
            return
        log.debug(
            "dropped a connection that read nothing of %d buffered bytes for %s s",
            backlog,
            self._limits.write_timeout_s,
        )
        self.transport.abort()

    # -- refusals -----------------------------------------------------------------------

    def _refuse(self, status: int, reason: str) -> None:
        """Answer ``status`` with ``reason`` and close; a request being read sees the
        client gone."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started:  # too late for a status: just drop it
                self.transport.abort()
                return
            cycle.disconnected = True
            cycle.message_event.set()
        body = reason.encode("ascii")
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[status],
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: %d\r\n" % len(body),
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
        )
        self.transport.close()


def _head_size(url: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    return len(url) + sum(len(name) + len(value) + 4 for name, value in headers)
