"""Find the runtime class for an artifact format through the ``maas.runtimes`` entry points.

A runtime whose framework is an optional extra (TorchScript needs ``maas[torch]``) fails to
import where that extra is missing; it is skipped, so the other formats keep working, and
asking for its format names the extra to install.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Final

from maas.errors import InvalidArtifactError
from maas.runtimes.base import LoadOptions, Runtime

__all__ = ["available_formats", "load_runtime", "runtime_class", "unavailable_formats"]

_GROUP = "maas.runtimes"

#: Top-level module a runtime imports -> the maas extra that installs it.
_EXTRAS: Final[dict[str, str]] = {
    "torch": "torch",
    "sklearn": "sklearn",
    "skl2onnx": "sklearn",
    "skops": "sklearn",
}


@dataclass(frozen=True, slots=True)
class _Found:
    classes: dict[str, type[Runtime]] = field(default_factory=dict)
    #: format -> why its runtime could not be imported
    missing: dict[str, str] = field(default_factory=dict)


def _missing_reason(artifact_format: str, exc: ImportError) -> str:
    module = (exc.name or "").partition(".")[0]
    extra = _EXTRAS.get(module)
    needs = f"the {module!r} package" if module else "a package that is not installed"
    install = f"pip install 'maas[{extra}]'" if extra else "install it"
    return f"format {artifact_format!r} needs {needs}; {install}"


@cache
def _found() -> _Found:
    found = _Found()
    for entry in entry_points(group=_GROUP):
        try:
            cls = entry.load()
        except ImportError as exc:
            found.missing[entry.name] = _missing_reason(entry.name, exc)
            continue
        if not (isinstance(cls, type) and issubclass(cls, Runtime)):
            raise TypeError(f"entry point {entry.value} in {_GROUP} is not a Runtime subclass")
        found.classes[entry.name] = cls
    return found


def available_formats() -> list[str]:
    """Formats whose runtime imported, so versions of them can load here."""
    return sorted(_found().classes)


def unavailable_formats() -> dict[str, str]:
    """Formats registered by entry point whose runtime could not import, with the reason."""
    return dict(_found().missing)


def runtime_class(artifact_format: str) -> type[Runtime]:
    found = _found()
    cls = found.classes.get(artifact_format)
    if cls is not None:
        return cls
    reason = found.missing.get(artifact_format)
    if reason is not None:
        raise InvalidArtifactError(reason)
    raise InvalidArtifactError(
        f"no runtime for format {artifact_format!r}; available: {', '.join(available_formats())}"
    )


def load_runtime(artifact_format: str, path: Path, options: LoadOptions = LoadOptions()) -> Runtime:
    """Load ``path`` with the runtime registered for ``artifact_format``."""
    return runtime_class(artifact_format).load(path, options)
