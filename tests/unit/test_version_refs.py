"""``parse_version_ref``: what a version reference means, and what it may never mean."""

from __future__ import annotations

import pytest

from maas.errors import InvalidInputError
from maas.registry.names import MAX_VERSION, parse_version_ref


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("1", 1),
        ("3", 3),
        ("03", 3),
        ("0000000007", 7),
        (str(MAX_VERSION), MAX_VERSION),
        (1, 1),
        (MAX_VERSION, MAX_VERSION),
    ],
)
def test_numbers(ref: str | int, expected: int) -> None:
    assert parse_version_ref(ref) == expected


@pytest.mark.parametrize("ref", ["production", "staging", "canary-2", "a", "v1", "x_y"])
def test_aliases(ref: str) -> None:
    assert parse_version_ref(ref) == ref


@pytest.mark.parametrize("ref", [None, ""])
def test_nothing_means_the_default(ref: str | None) -> None:
    assert parse_version_ref(ref) is None


@pytest.mark.parametrize(
    "ref", [0, "0", "00", -1, "-1", MAX_VERSION + 1, str(MAX_VERSION + 1), 10**4096]
)
def test_numbers_out_of_range(ref: str | int) -> None:
    with pytest.raises(InvalidInputError, match="invalid version"):
        parse_version_ref(ref)


@pytest.mark.parametrize(
    "ref",
    [
        "12345678901",  # 11 digits: more than a version column holds
        "9" * 4096,
        "²",  # str.isdigit() is True for these
        "\u0661",  # ARABIC-INDIC DIGIT ONE
        "1²",
        " 1",
        "1 ",
        "1\n",
        " ",
        "pro duction",
        "Production",
        "PRODUCTION",
        "-production",
        "1.0",
        "+1",
        "0x1",
    ],
)
def test_not_a_reference(ref: str) -> None:
    with pytest.raises(InvalidInputError, match="invalid version reference") as caught:
        parse_version_ref(ref)
    assert len(caught.value.message) < 200  # a 4096-digit reference is not echoed whole
    assert len(caught.value.details["version"]) <= 43


@pytest.mark.parametrize("ref", [True, False])
def test_booleans_are_not_numbers(ref: bool) -> None:
    with pytest.raises(InvalidInputError, match="invalid version reference"):
        parse_version_ref(ref)
