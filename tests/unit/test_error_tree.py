"""The one error tree: every code has a status in both transports' tables, and clients
get the class back from the code."""

from __future__ import annotations

import inspect

import pytest

from maas import errors
from maas.serving.grpc.errors import STATUS_BY_CODE as GRPC_STATUS
from maas.serving.rest.errors import STATUS_BY_CODE as REST_STATUS


def test_every_error_class_lives_in_errors_py_and_has_a_unique_code() -> None:
    classes = [
        c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, errors.MaasError)
    ]
    assert {c.code for c in classes} == set(errors.CODES)
    assert len({c.code for c in classes}) == len(classes)
    assert sorted(c.__name__ for c in classes) == sorted(
        n for n in errors.__all__ if n.endswith("Error")
    )


@pytest.mark.parametrize("code", sorted(errors.CODES))
def test_every_code_has_a_rest_and_a_grpc_status(code: str) -> None:
    assert code in REST_STATUS, f"rest/errors.py has no status for {code!r}"
    assert code in GRPC_STATUS, f"grpc/errors.py has no status for {code!r}"


def test_clients_pick_the_class_from_the_code() -> None:
    for code, cls in errors.CODES.items():
        assert errors.error_class(code) is cls
    assert errors.error_class("a code from a newer server") is errors.MaasError


def test_describe_is_one_line_without_a_traceback_a_class_or_a_path() -> None:
    assert errors.describe(RuntimeError("first\nsecond")) == "first"
    assert errors.describe(KeyError()) == "no reason given"
    raised = OSError(2, "No such file or directory", "/srv/maas/home/tmp/maas-upload-x/artifact")
    assert errors.describe(raised) == "[Errno 2] No such file or directory: 'artifact'"


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("at /onnxruntime_src/core/gather.cc:153 idx=4", "at gather.cc:153 idx=4"),
        ("(/home/maas/data/x.npz)", "(x.npz)"),
        ("folder /var/lib/maas/", "folder maas"),
        ("http://127.0.0.1:8000/v2/models/x", "http://127.0.0.1:8000/v2/models/x"),
        ("a/b/c, 1/2 and application/json", "a/b/c, 1/2 and application/json"),
        ("~/maas.toml", "~/maas.toml"),
    ],
)
def test_redact_paths_keeps_only_the_last_part_of_absolute_paths(text: str, redacted: str) -> None:
    assert errors.redact_paths(text) == redacted
