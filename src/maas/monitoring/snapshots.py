"""Metrics across the processes of one server (``maas serve --workers N``).

Each worker holds its own models, batchers and counters, and any one of them may answer
a scrape. So each writes its families to ``<folder>/<pid>.json`` about once a second
(``write_snapshot``: a temporary file renamed over the old one, so a reader never sees
half of one), and the process answering a scrape merges its own live families with the
snapshots of the other workers (``read_peers``, ``merge``): samples of equal name and
labels are summed, except in families that ``take_max`` names (drift scores: the same
reference compared in each process, so the largest is the one worth an alert).

A snapshot is left out when its process is gone (``kill(pid, 0)``) or it was not
rewritten for ``STALE_AFTER_S``: a worker that stopped takes its counts with it (the
sum drops, which Prometheus's ``rate`` reads as a counter reset).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final

from prometheus_client import Metric

__all__ = [
    "STALE_AFTER_S",
    "from_json",
    "merge",
    "process_alive",
    "read_peers",
    "remove_snapshot",
    "to_json",
    "write_snapshot",
]

#: A snapshot not rewritten for this long is left out (its writer hangs or is gone).
STALE_AFTER_S: Final = 30.0

_Key = tuple[str, tuple[tuple[str, str], ...]]


def to_json(families: Iterable[Metric]) -> bytes:
    """Families as a JSON list: name, type, help, unit and ``[name, labels, value]`` samples."""
    return json.dumps(
        [
            {
                "name": family.name,
                "type": family.type,
                "help": family.documentation,
                "unit": family.unit,
                "samples": [[s.name, s.labels, s.value] for s in family.samples],
            }
            for family in families
        ],
        separators=(",", ":"),
    ).encode()


def from_json(data: bytes) -> list[Metric]:
    """What ``to_json`` wrote; ``ValueError`` when it is not that."""
    found: list[Metric] = []
    for entry in json.loads(data):
        family = Metric(entry["name"], entry["help"], entry["type"], entry.get("unit", ""))
        for name, labels, value in entry["samples"]:
            family.add_sample(str(name), {str(k): str(v) for k, v in labels.items()}, float(value))
        found.append(family)
    return found


def write_snapshot(folder: Path, pid: int, data: bytes) -> None:
    """Put ``data`` at ``<folder>/<pid>.json`` atomically (a temp file, then a rename)."""
    partial = folder / f".{pid}.json.tmp"
    partial.write_bytes(data)
    os.replace(partial, folder / f"{pid}.json")


def remove_snapshot(folder: Path, pid: int) -> None:
    with contextlib.suppress(OSError):
        (folder / f"{pid}.json").unlink()


def read_peers(folder: Path, own_pid: int, now_s: float | None = None) -> list[list[Metric]]:
    """The families of every other living process's fresh snapshot in ``folder``."""
    now_s = time.time() if now_s is None else now_s
    found: list[list[Metric]] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:  # not made yet, or gone with the server
        return found
    for entry in entries:
        stem, _, suffix = entry.name.partition(".")
        if suffix != "json" or not stem.isdigit() or int(stem) == own_pid:
            continue
        try:
            if now_s - entry.stat().st_mtime > STALE_AFTER_S or not process_alive(int(stem)):
                continue
            found.append(from_json(Path(entry.path).read_bytes()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # replaced or removed while read, or not ours: next time
    return found


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (signal 0 delivers nothing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def merge(groups: Iterable[Iterable[Metric]], take_max: Callable[[str], bool]) -> list[Metric]:
    """One family per name over ``groups`` (one group per process): samples of equal name
    and labels summed, or the largest kept where ``take_max(family name)``. A family's
    type and help come from its first group; a histogram's series stay together."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[_Key, float]] = {}
    series: dict[str, dict[tuple[tuple[str, str], ...], list[_Key]]] = {}
    for group in groups:
        for family in group:
            name = family.name
            if name not in families:
                families[name] = Metric(name, family.documentation, family.type, family.unit)
                values[name], series[name] = {}, {}
            kept, order, biggest = values[name], series[name], take_max(name)
            for sample in family.samples:
                labels = tuple(sorted(sample.labels.items()))
                key = (sample.name, labels)
                if key in kept:
                    value = kept[key]
                    kept[key] = max(value, sample.value) if biggest else value + sample.value
                    continue
                kept[key] = sample.value
                order.setdefault(tuple(p for p in labels if p[0] != "le"), []).append(key)
    merged: list[Metric] = []
    for name, family in families.items():
        kept = values[name]
        for keys in series[name].values():
            for sample_name, labels in keys:
                family.add_sample(sample_name, dict(labels), kept[(sample_name, labels)])
        merged.append(family)
    return merged
