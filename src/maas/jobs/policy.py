"""What a job submitted over HTTP may make the server's worker read and import.

A spec names files to read and may name a Python factory to import and call. From the
CLI without a server that is the user's own business; through the server's API it is
whoever can reach the server, so the server lets a job read only below its data
folders (``MAAS_JOB_DATA_DIRS``, default: the folder it was started in) and import
factories only from the packages it names (``MAAS_JOB_FACTORY_MODULES``, default: none).
Paths are resolved (``..`` and symlinks) before the check and stay resolved in the spec.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from maas.config import Settings
from maas.errors import InvalidInputError
from maas.optimize.parents import Parent
from maas.optimize.spec import DistillSpec, OptimizeSpec, dataset_fields
from maas.training.language.spec import LanguageModelSpec
from maas.training.spec import BUILTIN_MODELS, DATASET_PATH_FIELDS, DatasetSpec, JobSpec

__all__ = ["SubmissionPolicy"]

_log = logging.getLogger(__name__)


_Spec = TypeVar("_Spec", bound=JobSpec | OptimizeSpec | LanguageModelSpec)


def _factories(
    spec: JobSpec | OptimizeSpec | LanguageModelSpec, parent: Parent | None
) -> list[tuple[str, str]]:
    """(field, model name) of every network the job builds."""
    found = []
    if isinstance(spec, JobSpec):
        found.append(("model.name", spec.model.name))
    if isinstance(spec, DistillSpec):
        found.append(("student.name", spec.student.name))
    if parent is not None and parent.architecture:
        found.append(("parent", str(parent.architecture["model"].get("name", ""))))
    return found


@dataclass(frozen=True, slots=True)
class SubmissionPolicy:
    """``None`` allows anything (a local run as the user's own process). Over the network
    the server cannot know the caller's folder, so paths must be absolute there."""

    data_dirs: tuple[Path, ...] | None = None
    factory_modules: tuple[str, ...] | None = None
    require_absolute_paths: bool = False

    @classmethod
    def for_server(cls, settings: Settings) -> SubmissionPolicy:
        dirs = tuple(settings.job_data_dirs) or (Path.cwd(),)
        return cls(
            tuple(d.resolve() for d in dirs),
            tuple(settings.job_factory_modules),
            require_absolute_paths=True,
        )

    def apply(self, spec: _Spec, parent: Parent | None = None) -> _Spec:
        """``spec`` with its data sets' paths resolved, or ``InvalidInputError`` naming the
        field. The factories it would import (a trained model's, a student's, the network
        a pruned parent is rebuilt from) must come from the allowed packages."""
        for field, name in _factories(spec, parent):
            self._check_factory(name, field)
        if self.data_dirs is None:
            return spec
        updates: dict[str, Any] = {
            field: self._resolved(field, dataset) for field, dataset in dataset_fields(spec).items()
        }
        if isinstance(spec, LanguageModelSpec) and spec.corpus.path is not None:
            path = self._allowed("corpus.path", spec.corpus.path)
            updates["corpus"] = spec.corpus.model_copy(update={"path": path})
        return cast(_Spec, spec.model_copy(update=updates))  # model_copy keeps the type

    def _resolved(self, field: str, dataset: DatasetSpec) -> DatasetSpec:
        updates = {
            name: self._allowed(f"{field}.{name}", value)
            for name in DATASET_PATH_FIELDS
            if (value := getattr(dataset, name)) is not None
        }
        return dataset.model_copy(update=updates) if updates else dataset

    def _allowed(self, field: str, value: Path) -> Path:
        """``value`` resolved, when it lies below a data folder; else refused naming ``field``."""
        assert self.data_dirs is not None
        if self.require_absolute_paths and not Path(value).is_absolute():
            raise InvalidInputError(
                f"{field}: {str(value)!r} must be an absolute path on the server "
                "(the CLI resolves a spec file's relative paths before submitting)",
                {"field": field},
            )
        resolved = Path(value).resolve()
        if not any(resolved.is_relative_to(folder) for folder in self.data_dirs):
            # The caller learns which of its paths is refused, never the server's folders.
            _log.info(
                "job refused: %s %s resolves to %s, outside %s",
                field,
                value,
                resolved,
                ", ".join(str(folder) for folder in self.data_dirs),
            )
            raise InvalidInputError(
                f"{field}: {value} is outside the folders this server lets jobs "
                "read (the server's MAAS_JOB_DATA_DIRS sets them)",
                {"field": field},
            )
        return resolved

    def _check_factory(self, name: str, field: str) -> None:
        if self.factory_modules is None or name in BUILTIN_MODELS:
            return
        module = name.partition(":")[0]
        if not any(module == m or module.startswith(m + ".") for m in self.factory_modules):
            raise InvalidInputError(
                f"{field}: this server imports model factories only from the packages "
                f"MAAS_JOB_FACTORY_MODULES names ({', '.join(self.factory_modules) or 'none'}), "
                f"not {module!r}; use a zoo model ({', '.join(BUILTIN_MODELS)}) or run the job "
                "with the CLI and no server",
                {"field": field},
            )
