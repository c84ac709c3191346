"""The transports' error answers: what callers read, and at which level the server logs it."""

from __future__ import annotations

import asyncio
import logging

import grpc  # type: ignore[import-untyped]  # grpcio ships no type stubs
import httpx
import orjson
import pytest
from fastapi import FastAPI

from maas import errors
from maas.serving.grpc.errors import grpc_status
from maas.serving.rest.errors import error_reply, install_error_handlers

_SECRET_PATH = "/srv/maas-home/artifacts/tmp/incoming-x1"
_GENERIC = "internal error (the server's log says why)"


class _Surprise(LookupError):
    """An exception no layer of maas expects, whose message carries a server path."""


def _app_that_fails() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/fails")
    async def fails() -> None:
        raise _Surprise(f"cannot open {_SECRET_PATH}")

    return app


def test_an_unexpected_error_answers_500_naming_no_class_and_no_path(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=_app_that_fails(), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            return await http.get("/fails")

    with caplog.at_level(logging.ERROR, logger="maas.serving.rest.errors"):
        reply = asyncio.run(call())
    assert reply.status_code == 500
    assert reply.json() == {"error": _GENERIC, "code": "internal"}
    assert "_Surprise" not in reply.text and "LookupError" not in reply.text
    assert "/srv" not in reply.text and "Traceback" not in reply.text
    (logged,) = [r for r in caplog.records if r.name == "maas.serving.rest.errors"]
    assert logged.levelno == logging.ERROR and logged.exc_info is not None  # the whole reason


def test_an_unexpected_error_answers_internal_over_grpc_naming_no_class_and_no_path(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="maas.serving.grpc.errors"):
        status, message = grpc_status(_Surprise(f"cannot open {_SECRET_PATH}"))
    assert (status, message) == (grpc.StatusCode.INTERNAL, _GENERIC)
    assert caplog.records and caplog.records[0].exc_info is not None


_TRANSIENT = [
    errors.QueueFullError("the queue is full", {"retry_after_s": 0.5}),
    errors.UnavailableError("not ready"),
    errors.WorkerCrashedError("the worker died"),
    errors.DeadlineExceededError("too late"),
]
_FAULTS = [
    errors.MaasError("bug"),
    errors.ModelError("the model failed: x"),
    errors.IntegrityError("changed bytes"),
]


@pytest.mark.parametrize("error", _TRANSIENT, ids=lambda e: e.code)
def test_refusals_under_load_are_logged_at_info_not_error(
    error: errors.MaasError, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        reply = error_reply(error)
        grpc_status(error)
    assert reply.status >= 500
    assert orjson.loads(reply.body)["code"] == error.code
    levels = [r.levelno for r in caplog.records if r.getMessage().startswith(f"{error.code}: ")]
    assert levels == [logging.INFO, logging.INFO]


@pytest.mark.parametrize("error", _FAULTS, ids=lambda e: e.code)
def test_the_servers_own_faults_stay_at_error(
    error: errors.MaasError, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        assert error_reply(error).status == 500
        assert grpc_status(error)[0] == grpc.StatusCode.INTERNAL
    levels = [r.levelno for r in caplog.records if r.getMessage().startswith(f"{error.code}: ")]
    assert levels == [logging.ERROR, logging.ERROR]


def test_a_queue_full_answers_resource_exhausted_over_grpc() -> None:
    assert grpc_status(errors.QueueFullError("full"))[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
