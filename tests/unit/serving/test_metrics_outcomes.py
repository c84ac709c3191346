"""Every error code counts as one outcome of ``maas_inference_requests_total``, and the
outcome follows its HTTP status: 4xx the client's, 429 and 503 rejections, 504 a
timeout, other 5xx failures (a crashed worker too: the server's fault, not load)."""

from __future__ import annotations

import asyncio

import pytest

from maas import errors
from maas.serving.rest.errors import STATUS_BY_CODE
from maas.serving.statistics import (
    CLIENT_ERROR,
    FAILURE,
    OUTCOME_OF_CODE,
    REJECTED,
    REST,
    SUCCESS,
    TIMEOUT,
    RequestMeter,
    VersionMetrics,
    outcome_of,
)


def _by_status(code: str) -> int:
    status = STATUS_BY_CODE[code]
    if code == errors.WorkerCrashedError.code:
        return FAILURE
    if status in (429, 503):
        return REJECTED
    if status == 504:
        return TIMEOUT
    return CLIENT_ERROR if status < 500 else FAILURE


@pytest.mark.parametrize("code", sorted(errors.CODES))
def test_every_code_has_the_outcome_its_status_says(code: str) -> None:
    assert OUTCOME_OF_CODE[code] == _by_status(code)
    assert outcome_of(errors.CODES[code]("x")) == _by_status(code)


def test_a_cancelled_request_is_the_clients_and_anything_else_a_failure() -> None:
    assert outcome_of(asyncio.CancelledError()) == CLIENT_ERROR
    assert outcome_of(RuntimeError("boom")) == FAILURE


def test_the_meter_counts_routed_requests_per_version_and_the_rest_as_unrouted() -> None:
    meter, metrics = RequestMeter(), VersionMetrics()
    meter.record(metrics, REST, SUCCESS, 0.002)
    meter.record(metrics, REST, TIMEOUT, 0.5)
    meter.record(None, REST, CLIENT_ERROR, 0.0)
    assert metrics.requests[SUCCESS] == 1 and metrics.requests[TIMEOUT] == 1
    assert metrics.durations[REST].count == 2 and metrics.durations[REST].sum == 0.502
    assert meter.unrouted[CLIENT_ERROR] == 1 and sum(meter.unrouted) == 1
