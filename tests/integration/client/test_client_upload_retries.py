"""The SDK's uploads carry an Idempotency-Key, so retrying one whose reply was lost is safe."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest

from maas.client import AsyncClient, Client
from maas.errors import UnavailableError


class LosesTheFirstUploadReply(httpx.BaseTransport):
    """The network between client and server: the first upload reaches the server and is
    answered, but the answer never arrives (a reset connection)."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.keys: list[str | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if request.method == "POST" and request.url.path.endswith("/versions"):
            self.keys.append(request.headers.get("Idempotency-Key"))
            if len(self.keys) == 1:
                response.read()
                response.close()
                raise httpx.ReadError("connection reset by peer", request=request)
        return response

    def close(self) -> None:
        self._inner.close()


def test_an_upload_retried_with_its_key_after_a_lost_reply_makes_one_version(
    server: str, linear: Path
) -> None:
    transport = LosesTheFirstUploadReply()
    with Client(server, transport=transport) as client:
        with pytest.raises(UnavailableError):
            client.upload("lin", linear, idempotency_key="retry-me")
        assert client.upload("lin", linear, idempotency_key="retry-me").version == 1
        assert [v.version for v in client.list_versions("lin")] == [1]
        # A new call is a new request (its own uuid4), even with the same bytes.
        assert client.upload("lin", linear).version == 2
    assert transport.keys[:2] == ["retry-me", "retry-me"]
    assert uuid.UUID(str(transport.keys[2])).version == 4


class RecordsKeys(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.keys: list[str | None] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.keys.append(request.headers.get("Idempotency-Key"))
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def test_the_async_client_sends_a_key_too(server: str, linear: Path) -> None:
    transport = RecordsKeys()

    async def scenario() -> tuple[int, int]:
        async with AsyncClient(server, transport=transport) as client:
            first = await client.upload("lin", linear, idempotency_key="k")
            again = await client.upload("lin", linear, idempotency_key="k")
            return first.version, again.version

    assert asyncio.run(scenario()) == (1, 1)
    assert transport.keys == ["k", "k"]
