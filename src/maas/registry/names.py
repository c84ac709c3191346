"""What the registry accepts as model, alias and format names, checked before any write.

Alias names start with a letter, so a reference like ``"3"`` can only ever mean version 3.
"""

from __future__ import annotations

import json
import re
from typing import Any

from maas.errors import InvalidInputError

__all__ = [
    "PRODUCTION_ALIAS",
    "check_alias_name",
    "check_artifact_format",
    "check_json_object",
    "check_model_name",
]

PRODUCTION_ALIAS = "production"

_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_ALIAS_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_FORMAT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")


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
