"""The training job specification: one typed document, refused at submission if it cannot run.

A spec comes from a YAML, TOML or JSON file, CLI flags or an HTTP body; all of them end in
``parse_spec``, so every route refuses a bad spec with the same message, which starts with
the field path (``"dataset.label_column: ..."``) and carries it in ``details["field"]``.
``validate_spec`` then runs the checks that need the data or the user's code.

>>> spec = parse_spec({"model": {"name": "mlp"}, "dataset": {"kind": "digits"},
...                    "hyperparameters": {"epochs": 5}})
>>> spec.hyperparameters.epochs, spec.dataset.validation_fraction
(5, 0.2)
"""

from __future__ import annotations

import importlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from maas.errors import InvalidInputError, describe
from maas.training.datasets import load_dataset

__all__ = [
    "BUILTIN_MODELS",
    "DATASET_PATH_FIELDS",
    "Augment",
    "DatasetSpec",
    "EarlyStopping",
    "Hyperparameters",
    "JobSpec",
    "ModelSpec",
    "load_spec",
    "parse_spec",
    "validate_spec",
    "with_overrides",
]

BUILTIN_MODELS: Final[tuple[str, ...]] = ("mlp", "cnn", "resnet")
DATASET_PATH_FIELDS: Final[tuple[str, ...]] = ("path", "validation_path", "test_path")
"""The ``dataset`` fields that name files: resolved against a base folder, checked by policy."""

# Mirrors maas.registry.names (not imported: that package pulls in SQLAlchemy).
_MODEL_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"
_VERSION_REF = r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}"
_FACTORY = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")


class _Strict(BaseModel):
    """Unknown keys are refused (a typo must not silently fall back to a default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_model_name(name: str) -> str:
    if name in BUILTIN_MODELS or _FACTORY.fullmatch(name):
        return name
    raise ValueError(
        f"unknown model {name!r}; choose one of {', '.join(BUILTIN_MODELS)} "
        "or a 'package.module:factory' path"
    )


class ModelSpec(_Strict):
    """A zoo model (``mlp``, ``cnn``, ``resnet``) or the user's ``package.module:factory``."""

    name: str = "mlp"
    options: dict[str, Any] = Field(default_factory=dict)

    _name = field_validator("name")(_check_model_name)


class Augment(_Strict):
    """Training-time augmentation, applied by the trainer to image batches."""

    flip: bool = False
    crop: int = Field(default=0, ge=0, le=64, description="random-crop padding in pixels")


class DatasetSpec(_Strict):
    """Where the data is and how it is split; ``image_size`` is (height, width).

    Fields are declared so that each validator sees the fields it depends on.
    """

    kind: Literal["digits", "npz", "csv", "images"] = "digits"
    path: Path | None = Field(default=None, validate_default=True)
    label_column: str | None = Field(default=None, validate_default=True)
    image_size: tuple[int, int] | None = None
    grayscale: bool = False
    normalize: bool = True
    augment: Augment = Field(default_factory=Augment)
    validation_path: Path | None = None
    test_path: Path | None = None
    validation_fraction: float = Field(default=0.2, ge=0.0, lt=1.0, validate_default=True)
    test_fraction: float = Field(default=0.0, ge=0.0, lt=1.0)

    @field_validator("path")
    @classmethod
    def _path_matches_kind(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        kind = info.data.get("kind")
        if kind == "digits" and value is not None:
            raise ValueError("the built-in 'digits' dataset takes no path")
        if kind not in (None, "digits") and value is None:
            raise ValueError(f"required for kind {kind!r}")
        return value

    @field_validator("label_column")
    @classmethod
    def _label_for_csv(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind == "csv" and not value:
            raise ValueError("required for kind 'csv'")
        if kind not in (None, "csv") and value is not None:
            raise ValueError(f"only used for kind 'csv', not {kind!r}")
        return value

    @field_validator("image_size")
    @classmethod
    def _positive_size(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not all(1 <= side <= 4096 for side in value):
            raise ValueError(f"sides must be 1..4096, got {value}")
        return value

    @field_validator("validation_fraction")
    @classmethod
    def _some_validation(cls, value: float, info: ValidationInfo) -> float:
        if value == 0.0 and info.data.get("validation_path") is None:
            raise ValueError("must be > 0 unless validation_path is given")
        return value

    @field_validator("test_fraction")
    @classmethod
    def _room_to_train(cls, value: float, info: ValidationInfo) -> float:
        validation = info.data.get("validation_fraction", 0.0)
        if info.data.get("validation_path") is not None:
            validation = 0.0
        if value + validation >= 0.9:
            raise ValueError(
                f"validation_fraction + test_fraction = {value + validation:g} "
                "leaves too little to train on (keep it under 0.9)"
            )
        return value


class EarlyStopping(_Strict):
    """Stop when ``metric`` has not improved for ``patience`` epochs."""

    metric: Literal["val_loss", "val_accuracy"] = "val_loss"
    patience: int = Field(default=5, ge=1, le=1000)


class Hyperparameters(_Strict):
    """Optimiser, schedule and stopping; all recorded in the version's lineage."""

    epochs: int = Field(default=30, ge=1, le=10_000)
    batch_size: int = Field(default=64, ge=1, le=65_536)
    optimizer: Literal["sgd", "adam", "adamw"] = "adam"
    learning_rate: float = Field(default=1e-3, gt=0.0, le=10.0)
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=0.0, ge=0.0, le=1.0)
    schedule: Literal["none", "step", "cosine"] = "none"
    step_size: int = Field(default=10, ge=1)
    gamma: float = Field(default=0.1, gt=0.0, le=1.0)
    early_stopping: EarlyStopping | None = None
    seed: int = Field(default=0, ge=0, le=2**32 - 1)


class JobSpec(_Strict):
    """One training job: what to train, on what, how, and under which registered name."""

    model_name: str = Field(default="digits", pattern=f"^{_MODEL_NAME}$")
    model: ModelSpec = Field(default_factory=ModelSpec)
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    init_from: str | None = Field(default=None, pattern=f"^{_MODEL_NAME}:{_VERSION_REF}$")


# Error types whose message already says what was given (or there was nothing given).
_NO_ECHO: Final = frozenset({"missing", "value_error"})


def _refusal(error: ValidationError) -> InvalidInputError:
    """The first error leads the message with its field path; the rest follow it."""
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "spec"
        message = str(item["msg"]).removeprefix("Value error, ")
        given = item.get("input")
        if isinstance(given, str | int | float | bool) and item["type"] not in _NO_ECHO:
            message += f", got {given!r}"
        problems.append({"field": field, "message": message})
    text = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    return InvalidInputError(text, {"field": problems[0]["field"], "errors": problems})


def parse_spec(document: dict[str, Any]) -> JobSpec:
    """Validate a decoded document (JSON body, parsed file, CLI flags) into a ``JobSpec``."""
    if not isinstance(document, dict):
        raise InvalidInputError(
            f"spec: expected a mapping, got {type(document).__name__}", {"field": "spec"}
        )
    try:
        return JobSpec.model_validate(document)
    except ValidationError as error:
        raise _refusal(error) from None


def _read_document(path: Path) -> Any:
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    if suffix in (".yaml", ".yml"):
        return yaml.safe_load(text)
    if suffix == ".toml":
        return tomllib.loads(text)
    if suffix == ".json":
        return json.loads(text)
    raise InvalidInputError(
        f"spec: unsupported file type {suffix!r}; use .yaml, .yml, .toml or .json",
        {"field": "spec"},
    )


def _document_of(path: Path) -> Any:
    """A spec file's decoded content, or ``InvalidInputError`` on field ``spec``."""
    try:
        return _read_document(path)
    except FileNotFoundError:
        raise InvalidInputError(f"spec: file {path} not found", {"field": "spec"}) from None
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as error:
        raise InvalidInputError(f"spec: cannot parse {path}: {error}", {"field": "spec"}) from None


def load_spec(path: Path) -> JobSpec:
    """Read a spec file; relative dataset paths are taken from the spec file's folder."""
    spec = parse_spec(_document_of(path))
    base = path.resolve().parent
    updates = {
        name: base / value
        for name in DATASET_PATH_FIELDS
        if (value := getattr(spec.dataset, name)) is not None and not value.is_absolute()
    }
    if not updates:
        return spec
    return spec.model_copy(update={"dataset": spec.dataset.model_copy(update=updates)})


def with_overrides(document: dict[str, Any], assignments: list[str], base: Path) -> dict[str, Any]:
    """``document`` with each ``FIELD=VALUE`` applied (``hyperparameters.epochs=5``,
    ``model.options.channels=[16, 32]``); values are read as YAML scalars or flow
    collections, relative dataset paths are taken from ``base``. Not validated here.

    >>> with_overrides({}, ["hyperparameters.epochs=5"], Path("."))
    {'hyperparameters': {'epochs': 5}}
    """
    result: dict[str, Any] = json.loads(json.dumps(document))  # a deep copy of plain values
    for assignment in assignments:
        field, separator, text = assignment.partition("=")
        if not separator or not field.strip():
            raise InvalidInputError(
                f"--set: expected FIELD=VALUE, got {assignment!r}", {"field": "set"}
            )
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as error:
            message = f"{field}: cannot read {text!r}: {error}"
            raise InvalidInputError(message, {"field": field}) from None
        is_path = field in {f"dataset.{name}" for name in DATASET_PATH_FIELDS}
        if is_path and isinstance(value, str) and not Path(value).is_absolute():
            value = str(base / value)
        *parents, leaf = field.strip().split(".")
        node = result
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise InvalidInputError(f"{field}: {part!r} is not a section", {"field": field})
            node = child
        node[leaf] = value
    return result


def _check_factory(name: str) -> None:
    """Import the user's module and check the factory is callable (it is user code, by design)."""
    module_name, _, attribute = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # the user's module may raise anything while it imports
        raise InvalidInputError(
            f"model.name: cannot import module {module_name!r}: {describe(error)}",
            {"field": "model.name"},
        ) from error
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise InvalidInputError(
            f"model.name: {module_name!r} has no callable {attribute!r}", {"field": "model.name"}
        )


def validate_spec(spec: JobSpec) -> None:
    """The checks that need the data or the user's code, so a bad job never starts."""
    try:
        _check_model_name(spec.model.name)
    except ValueError as error:
        raise InvalidInputError(f"model.name: {error}", {"field": "model.name"}) from None
    if spec.model.name not in BUILTIN_MODELS:
        _check_factory(spec.model.name)
    load_dataset(spec.dataset, seed=spec.hyperparameters.seed)
