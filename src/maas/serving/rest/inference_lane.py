"""The V2 infer endpoint as a bare ASGI app in front of FastAPI: the REST hot path.

A request to ``POST /v2/models/{name}[/versions/{version}]/infer`` is answered here with
no framework work per request (no routing table walk, no middleware stack, no Request
or Response objects); every other request passes through to the FastAPI app. Measured
on the tiny MLP, FastAPI's per-request work cost more than the inference itself.

The lane applies the same checks as the rest of the API, from the one pass it makes over
the headers: the browser defences (``HeaderPolicy``) and, when keys are required, the
``predict`` scope on the model the path names (``Gatekeeper``).

With metrics on (``DataPlane.meter``), each request's outcome and its time from entry to
the encoded answer go to the routed version's series (``statistics.RequestMeter``; a
request refused before its version is known counts as unrouted): a perf_counter at each
end and ~0.3 µs between.

While a request waits for its result, the lane watches for the client going away and
cancels the request, so its queued work is never executed.

A body over ``_OFF_LOOP_BYTES`` (1 MiB) is decoded in a thread (``asyncio.to_thread``):
the ``JsonLimits`` checks count and scan with numpy a block at a time, letting go of the
GIL, so the event loop answers meanwhile (health checks included); orjson's parse itself
holds the GIL, and the bounds are what keep it short. A small body is decoded inline,
where a thread hop (about 50 µs) would cost more than the decoding.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Coroutine
from typing import Any, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from maas.control import access
from maas.errors import InvalidInputError, MaasError, PayloadTooLargeError
from maas.protocol.binary_codec import decode_request, encode_response
from maas.protocol.json_codec import JSON_LIMITS, JsonLimits
from maas.protocol.types import InferResponse
from maas.serving.access import Gatekeeper, bearer_token
from maas.serving.dataplane import DataPlane
from maas.serving.rest.browser import HeaderPolicy
from maas.serving.rest.errors import error_reply
from maas.serving.statistics import CLIENT_ERROR, FAILURE, REST, SUCCESS, VersionMetrics, outcome_of

__all__ = ["InferenceLane"]

log = logging.getLogger(__name__)

_INFER_PATH: Final = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?/infer")
_JSON: Final = [(b"content-type", b"application/json")]
_BINARY: Final = b"application/octet-stream"
_HEADER_LENGTH: Final = b"inference-header-content-length"
_PREDICT: Final = access.Requirement.any_of(access.Scope.PREDICT)
_OFF_LOOP_BYTES: Final = 1 << 20


class InferenceLane:
    def __init__(
        self,
        app: ASGIApp,
        dataplane: DataPlane,
        gatekeeper: Gatekeeper,
        headers: HeaderPolicy,
        max_body_bytes: int,
        json_limits: JsonLimits = JSON_LIMITS,
    ) -> None:
        self._app = app
        self._dataplane = dataplane
        self._gatekeeper = gatekeeper
        self._headers = headers
        self._max_body_bytes = max_body_bytes
        self._json_limits = json_limits
        self._meter = dataplane.meter

    def drain(self) -> None:
        """The server is stopping: report not ready from now on, and go on serving."""
        self._dataplane.drain()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            match = _INFER_PATH.fullmatch(scope["path"])
            if match is not None:
                await self._infer(match[1], match[2], scope, receive, send)
                return
        await self._app(scope, receive, send)

    async def _infer(
        self, name: str, version: str | None, scope: Scope, receive: Receive, send: Send
    ) -> None:
        meter = self._meter
        started_s = time.perf_counter() if meter is not None else 0.0
        measured: VersionMetrics | None = None  # the routed version's series
        try:
            headers = scope["headers"]
            header_length, authorization = self._check_headers(headers)
            if self._gatekeeper.keyring.enforcing:
                token = bearer_token(authorization)
                if self._gatekeeper.admit_known(token, _PREDICT, name) is None:
                    await self._gatekeeper.admit(token, _PREDICT, name)
            body = await self._read_body(receive)
            if body is None:
                return  # the client went away (or its body stalled): nobody to answer
            route = await self._dataplane.route(name, version, self._routing_key(name, headers))
            measured = route[0].stats.metrics
            if len(body) <= _OFF_LOOP_BYTES:  # inline: no coroutine, no thread hop
                request = decode_request(body, header_length, self._json_limits)
            else:
                request = await asyncio.to_thread(
                    decode_request, body, header_length, self._json_limits
                )
            response = await _unless_disconnected(self._dataplane.infer(route, request), receive)
            if response is None:
                if meter is not None:
                    meter.record(measured, REST, CLIENT_ERROR, time.perf_counter() - started_s)
                return  # the client went away; nobody to answer
            encoded = encode_response(request, response)
        except MaasError as exc:
            if meter is not None:
                meter.record(measured, REST, outcome_of(exc), time.perf_counter() - started_s)
            reply = error_reply(exc)
            headers = [*_JSON, *((k.encode(), v.encode()) for k, v in reply.headers.items())]
            await _send(send, reply.status, headers, reply.body)
            return
        except Exception:
            if meter is not None:
                meter.record(measured, REST, FAILURE, time.perf_counter() - started_s)
            log.exception("unexpected error in infer")
            await _send(send, 500, _JSON, b'{"error":"internal error","code":"internal"}')
            return
        if meter is not None:
            meter.record(measured, REST, SUCCESS, time.perf_counter() - started_s)
        if encoded.json_length is None:
            await _send(send, 200, _JSON, encoded.body)
        else:
            headers = [
                (b"content-type", _BINARY),
                (_HEADER_LENGTH, str(encoded.json_length).encode()),
            ]
            await _send(send, 200, headers, encoded.body)

    def _routing_key(self, name: str, headers: list[tuple[bytes, bytes]]) -> bytes | None:
        """The value of the header the model's traffic policy sticks on (if it has one)."""
        header = self._dataplane.routing_header(name)
        if header is None:
            return None
        wanted = header.encode("latin-1")
        return next((value for key, value in headers if key == wanted), None)

    def _check_headers(self, headers: list[tuple[bytes, bytes]]) -> tuple[str | None, bytes | None]:
        """The binary header length and the Authorization value, once every header check
        passed (size, encoding, ``HeaderPolicy``)."""
        header_length = authorization = host = origin = content_type = None
        for key, value in headers:
            if key == b"host":
                host = value
            elif key == b"content-type":
                content_type = value
            elif key == b"authorization":
                authorization = value
            elif key == b"origin":
                origin = value
            elif key == _HEADER_LENGTH:
                header_length = value.decode("latin-1")
            elif key == b"content-length" and value.isdigit():
                if int(value) > self._max_body_bytes:
                    raise PayloadTooLargeError(
                        f"request body of {int(value)} bytes exceeds {self._max_body_bytes}"
                    )
            elif key == b"content-encoding" and value.strip().lower() != b"identity":
                raise InvalidInputError(
                    f"Content-Encoding {value.decode('latin-1')!r} is not supported; send it raw"
                )
        self._headers.check("POST", host, origin, content_type, True)
        return header_length, authorization

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None when the client went away before sending it."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body_bytes:
                raise PayloadTooLargeError(f"request body exceeds {self._max_body_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _unless_disconnected(
    work: Coroutine[Any, Any, InferResponse], receive: Receive
) -> InferResponse | None:
    """Await ``work``; if the client disconnects first, cancel it and return None.

    One watcher task per request (not a second task for the work plus ``asyncio.wait``):
    on disconnect it cancels this very task, which cancels the work it awaits.
    """
    me = asyncio.current_task()
    assert me is not None
    gone = False

    def on_message(watcher: asyncio.Task[Message]) -> None:
        nonlocal gone
        if not watcher.cancelled() and watcher.result()["type"] == "http.disconnect":
            gone = True
            me.cancel()

    watcher: asyncio.Task[Message] = asyncio.ensure_future(receive())
    watcher.add_done_callback(on_message)
    try:
        return await work
    except asyncio.CancelledError:
        if gone:
            return None  # the client went away: its queued work was cancelled with us
        raise
    finally:
        watcher.remove_done_callback(on_message)
        watcher.cancel()


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
