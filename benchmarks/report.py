"""What every benchmark report shares: the command that produced it, medians, ratios,
the verdict on a target, and the ``--json`` file.

>>> ratio(9.0, 10.0)
'0.900'
>>> median([3.0, 1.0, 2.0])
2.0
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["command_line", "median", "mib", "ratio", "verdict", "write_json"]


def command_line() -> str:
    """This process's command line as it was typed (the interpreter relative to the
    working directory when it is below it), for the head of a report."""
    python = sys.executable
    relative = os.path.relpath(python)
    if not relative.startswith(".."):
        python = relative
    return shlex.join([python, *sys.argv])


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def mib(size_bytes: float) -> str:
    return f"{size_bytes / 2**20:,.1f}"


def ratio(a: float, b: float | None) -> str:
    return f"{a / b:.3f}" if b else "-"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def write_json(path: Path | None, document: dict[str, Any]) -> None:
    """Write ``document`` (with the command line) to ``path``, if one was given."""
    if path is not None:
        path.write_text(json.dumps({"command": command_line(), **document}, indent=2))
