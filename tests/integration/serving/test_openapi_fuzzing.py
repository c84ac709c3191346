"""schemathesis against a real server: every operation of ``/openapi.json``, fed generated
valid and invalid requests, answers no 5xx, only statuses its document lists, and bodies
that match the document's schemas.

Bounded for CI (a few hundred milliseconds per operation on two cores, derandomized so
every run sends the same requests, no shrinking). ``POST /api/jobs`` is left out: each
request starts a validation process (seconds), and its refusals are tested on their own
(``test_job_error_hygiene.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable

from maas.config import Settings
from maas.control.uploads import register_upload
from maas.registry import Registry
from maas.testing.models import write_linear_model
from maas.testing.server import running_server

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error  # noqa: E402 - after the importorskip
from schemathesis.core.failures import Failure, FailureGroup  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
EXAMPLES = {schemathesis.GenerationMode.POSITIVE: 30, schemathesis.GenerationMode.NEGATIVE: 15}
SKIPPED = {("POST", "/api/jobs")}


@pytest.fixture
def server(tmp_path: Path, local_registry: Registry) -> Iterator[str]:
    register_upload(local_registry, "linear", write_linear_model(tmp_path / "m.onnx"), actor="t")
    # Open, so that a key the fuzzing creates does not turn every later answer into a 401.
    settings = Settings(home=tmp_path, refresh_interval_s=0.2, auth="off", job_concurrency=0)
    with running_server(settings, local_registry) as url:
        yield url


def _failures(operation: Any, url: str, session: requests.Session) -> list[str]:
    """What the checks found for ``operation``: valid requests, then invalid ones."""
    found: list[str] = []
    for mode, examples in EXAMPLES.items():
        try:
            found += _run(operation, mode, examples, url, session)
        except Unsatisfiable:  # nothing to make invalid (an operation without inputs)
            assert mode is schemathesis.GenerationMode.NEGATIVE
    return found


def _run(
    operation: Any, mode: Any, examples: int, url: str, session: requests.Session
) -> list[str]:
    found: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        try:
            case.call_and_validate(base_url=url, session=session, checks=CHECKS, timeout=60)
        except (Failure, FailureGroup) as failure:  # one check failed, or several
            found.append(f"{mode.value}: {failure}")

    run()
    return found


def test_every_operation_answers_as_its_document_says(server: str) -> None:
    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    failures: dict[str, list[str]] = {}
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            if (operation.method.upper(), operation.path) in SKIPPED:
                continue
            if found := _failures(operation, server, session):
                failures[operation.label] = found[:2]
    assert not failures, "\n\n".join(
        f"{label}:\n" + "\n".join(found) for label, found in sorted(failures.items())
    )
