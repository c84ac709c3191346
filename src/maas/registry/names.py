"""What the registry accepts as model, alias and format names, and version references.

Alias names start with a letter, so a reference like ``"3"`` can only ever mean version 3.
Version numbers are ASCII digits only (``str.isdigit`` would take "²" or Arabic-Indic
digits) and at most ``MAX_VERSION``, the largest a version column holds.
"""

from __future__ import annotations

import json
import re
from typing import Any

from maas.errors import InvalidInputError

__all__ = [
    "MAX_VERSION",
    "PRODUCTION_ALIAS",
    "check_alias_name",
    "check_artifact_format",
    "check_json_object",
    "check_model_name",
    "parse_version_ref",
]

PRODUCTION_ALIAS = "production"
MAX_VERSION = 2**31 - 1

_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_ALIAS_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_FORMAT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
_VERSION_NUMBER = re.compile(r"[0-9]{1,10}")


def check_model_name(name: str) -> str:
    """Return ``name`` if it is a valid model name (it appears in URLs and file names)."""
    if not isinstance(name, str) or _MODEL_NAME.fullmatch(name) is None:
        raise InvalidInputError(
            f"invalid model name {name!r}: use 1-128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_alias_name(name: str) -> str:
    """Return ``name`` if it is a valid alias name (never all digits, so never a version)."""
    if not isinstance(name, str) or _ALIAS_NAME.fullmatch(name) is None:
        raise InvalidInputError(
            f"invalid alias name {name!r}: use 1-63 lowercase letters, digits, '_' or '-', "
            "starting with a letter"
        )
    return name


def check_artifact_format(artifact_format: str) -> str:
    """Return ``artifact_format`` if it looks like a format name such as ``onnx``."""
    if not isinstance(artifact_format, str) or _FORMAT_NAME.fullmatch(artifact_format) is None:
        raise InvalidInputError(f"invalid artifact format {artifact_format!r}")
    return artifact_format


def check_json_object(what: str, value: dict[str, Any] | None) -> dict[str, Any]:
    """Return ``value`` (``{}`` for None) once it is known to serialise as a JSON object.

    Checked up front so that a bad value fails before the artifact is stored.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInputError(f"{what} must be a mapping, got {type(value).__name__}")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{what} is not JSON-serialisable: {exc}") from None
    return value


def parse_version_ref(ref: str | int | None) -> int | str | None:
    """What a version reference means: ``None`` (or "") the default version, a number, or
    an alias name; anything else is ``InvalidInputError`` naming the reference.

    >>> parse_version_ref("3"), parse_version_ref("production"), parse_version_ref(None)
    (3, 'production', None)
    """
    if ref is None or ref == "":
        return None
    if isinstance(ref, bool):
        raise InvalidInputError(f"invalid version reference {ref!r}", {"version": str(ref)})
    if isinstance(ref, int):
        number = ref
    elif isinstance(ref, str) and _VERSION_NUMBER.fullmatch(ref):
        number = int(ref)
    elif isinstance(ref, str) and _ALIAS_NAME.fullmatch(ref):
        return ref
    else:
        shown = ref if not isinstance(ref, str) or len(ref) <= 40 else ref[:40] + "..."
        raise InvalidInputError(
            f"invalid version reference {shown!r}: give a version number "
            f"(1 to {MAX_VERSION}) or an alias name",
            {"version": str(shown)},
        )
    if not 1 <= number <= MAX_VERSION:
        raise InvalidInputError(
            f"invalid version number {number}: versions are numbered 1 to {MAX_VERSION}",
            {"version": str(number)[:40]},
        )
    return number
