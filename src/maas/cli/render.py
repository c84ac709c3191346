"""Printing results: ``--json`` documents and the small formatting helpers tables share."""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import datetime
from typing import Any

import numpy as np

from maas.protocol.signature import Signature

__all__ = ["as_json", "number", "print_json", "when"]


def as_json(value: Any) -> Any:
    """A result (SDK dataclasses, lists of them, datetimes, signatures) as plain JSON."""
    if isinstance(value, Signature):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: as_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def print_json(value: Any) -> None:
    """``--json``: the result as one JSON document on stdout, nothing else (written
    directly, so no terminal width ever wraps it)."""
    sys.stdout.write(json.dumps(as_json(value), indent=2) + "\n")
    sys.stdout.flush()


def number(value: object, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:+.4f}" if signed else f"{value:.4f}"
    return f"{value:+}" if signed and isinstance(value, int) else str(value)


def when(value: datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M:%S}"
