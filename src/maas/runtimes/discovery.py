"""Find the runtime class for an artifact format through the ``maas.runtimes`` entry points."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from pathlib import Path

from maas.errors import InvalidArtifactError
from maas.runtimes.base import LoadOptions, Runtime

__all__ = ["available_formats", "load_runtime", "runtime_class"]

_GROUP = "maas.runtimes"


@cache
def _classes() -> dict[str, type[Runtime]]:
    found: dict[str, type[Runtime]] = {}
    for entry in entry_points(group=_GROUP):
        cls = entry.load()
        if not (isinstance(cls, type) and issubclass(cls, Runtime)):
            raise TypeError(f"entry point {entry.value} in {_GROUP} is not a Runtime subclass")
        found[entry.name] = cls
    return found


def available_formats() -> list[str]:
    return sorted(_classes())


def runtime_class(artifact_format: str) -> type[Runtime]:
    try:
        return _classes()[artifact_format]
    except KeyError:
        raise InvalidArtifactError(
            f"no runtime for format {artifact_format!r}; "
            f"available: {', '.join(available_formats())}"
        ) from None


def load_runtime(
    artifact_format: str, path: Path, options: LoadOptions = LoadOptions()
) -> Runtime:
    """Load ``path`` with the runtime registered for ``artifact_format``."""
    return runtime_class(artifact_format).load(path, options)
