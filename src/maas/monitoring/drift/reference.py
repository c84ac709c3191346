"""A version's input reference: built from rows of inputs, its stored document, and
the strict reading of that document (errors name the field)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, cast, get_args

import numpy as np

from maas.errors import InvalidInputError
from maas.monitoring.drift.features import (
    MAX_EDGES,
    NUMERIC_KINDS,
    QUANTILE_POINTS,
    FeatureStats,
    InputFeatures,
    refuse,
)

__all__ = ["FORMAT", "MAX_FEATURES", "MAX_INPUTS", "Reference", "ReferenceSource"]

FORMAT: Final = "maas.drift.reference/1"
MAX_FEATURES: Final = 1024
MAX_INPUTS: Final = 16
MAX_RANK: Final = 8

SourceKind = Literal["training", "dataset"]

_SHA256: Final = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class ReferenceSource:
    """What a reference was built from: a version's training split (``training``: the
    dataset's name, content hash and split) or a data set someone gave (``dataset``)."""

    kind: SourceKind
    description: str = ""
    dataset: str | None = None
    sha256: str | None = None
    split: str | None = None

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"kind": self.kind, "description": self.description}
        for key in ("dataset", "sha256", "split"):
            if (value := getattr(self, key)) is not None:
                found[key] = value
        return found

    @classmethod
    def from_dict(cls, document: Any) -> ReferenceSource:
        if not isinstance(document, dict):
            raise refuse("source", "must be an object")
        _only(document, {"kind", "description", "dataset", "sha256", "split"}, "source")
        kind = document.get("kind")
        if kind not in get_args(SourceKind):
            raise refuse("source.kind", "must be 'training' or 'dataset'")
        sha256 = _text(document, "sha256", "source", 64, optional=True)
        if sha256 is not None and not _SHA256.fullmatch(sha256):
            raise refuse("source.sha256", "must be 64 lowercase hex digits")
        return cls(
            kind=cast(SourceKind, kind),
            description=_text(document, "description", "source", 500, optional=True) or "",
            dataset=_text(document, "dataset", "source", 200, optional=True),
            sha256=sha256,
            split=_text(document, "split", "source", 32, optional=True),
        )


@dataclass(frozen=True, slots=True, eq=False)
class Reference:
    """A version's input reference. ``build`` makes one from rows of inputs;
    ``to_dict``/``from_dict`` are its stored document (validated strictly).

    >>> source = ReferenceSource("dataset", "last week's traffic")
    >>> reference = Reference.build({"input": x_train}, source)  # doctest: +SKIP
    >>> score(reference, reference.extract([{"input": x_live}])).score  # doctest: +SKIP
    0.04
    """

    inputs: tuple[InputFeatures, ...]
    features: tuple[FeatureStats, ...]
    rows: int
    source: ReferenceSource

    @classmethod
    def build(cls, inputs: Mapping[str, np.ndarray], source: ReferenceSource) -> Reference:
        """From arrays of rows (the batch axis first, the same rows in each input); rows
        holding a NaN or an infinity in any feature are left out."""
        specs: list[InputFeatures] = []
        blocks: list[np.ndarray] = []
        for name, value in inputs.items():
            array = np.asarray(value)
            if array.ndim < 2 or array.dtype.kind not in NUMERIC_KINDS:
                continue  # no rows of numbers: BYTES, or a scalar per row
            spec = InputFeatures.of(name, tuple(int(d) for d in array.shape[1:]))
            if spec.features == 0:
                continue
            specs.append(spec)
            block = spec.extract(array)
            assert block is not None  # the spec was made from this array's own shape
            blocks.append(block)
        if not specs:
            raise InvalidInputError("reference: the inputs hold no numeric features")
        if len({len(b) for b in blocks}) != 1:
            raise InvalidInputError("reference: the inputs hold different numbers of rows")
        matrix = np.hstack(blocks)
        matrix = matrix[np.isfinite(matrix).all(axis=1)]
        if len(matrix) == 0:
            raise InvalidInputError("reference: no row holds only finite values")
        names = [n for spec in specs for n in spec.names()]
        if len(names) > MAX_FEATURES:
            raise InvalidInputError(
                f"reference: {len(names)} features, more than {MAX_FEATURES}",
                {"features": len(names)},
            )
        stats = tuple(FeatureStats.of(n, matrix[:, j]) for j, n in enumerate(names))
        return cls(tuple(specs), stats, len(matrix), source)

    def extract(self, feeds: Iterable[Mapping[str, np.ndarray]]) -> np.ndarray:
        """The features of live feeds, ``(rows, features)``, in order; a feed that lacks an
        input or does not fit its shape is left out, as are rows holding a non-finite
        value. Consecutive feeds of the same shapes are stacked and extracted at once (a
        window of 2000 one-row requests: one concatenation, not 2000 small extractions)."""
        blocks: list[np.ndarray] = []
        run: list[list[np.ndarray]] = []
        run_key: tuple[Any, ...] | None = None
        for feed in feeds:
            arrays = [feed.get(spec.name) for spec in self.inputs]
            if any(a is None for a in arrays):
                continue
            found = [a for a in arrays if a is not None]
            key = tuple((a.shape, a.dtype.str) for a in found)
            if key != run_key and run:
                blocks.extend(self._extract_run(run))
                run = []
            run_key = key
            run.append(found)
        if run:
            blocks.extend(self._extract_run(run))
        if not blocks:
            return np.empty((0, len(self.features)))
        matrix = np.vstack(blocks)
        finite: np.ndarray = matrix[np.isfinite(matrix).all(axis=1)]
        return finite

    def _extract_run(self, run: list[list[np.ndarray]]) -> list[np.ndarray]:
        """Features of feeds whose inputs have the same shapes (none when they do not fit)."""
        parts: list[np.ndarray] = []
        for j, spec in enumerate(self.inputs):
            arrays = [a[None] if a.shape == spec.row_shape else a for a in (m[j] for m in run)]
            if any(a.ndim == 0 for a in arrays):
                return []
            part = spec.extract(arrays[0] if len(arrays) == 1 else np.concatenate(arrays))
            if part is None or (parts and len(part) != len(parts[0])):
                return []
            parts.append(part)
        return [parts[0] if len(parts) == 1 else np.hstack(parts)]

    def summary(self) -> dict[str, Any]:
        """What the audit log and the drift API say of a reference: source, rows, features."""
        return {
            "source": self.source.to_dict(),
            "rows": self.rows,
            "features": len(self.features),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "rows": self.rows,
            "source": self.source.to_dict(),
            "inputs": [spec.to_dict() for spec in self.inputs],
            "features": [stats.to_dict() for stats in self.features],
        }

    @classmethod
    def from_dict(cls, document: Any) -> Reference:
        """The reference a stored or uploaded document describes; ``InvalidInputError``
        naming the field otherwise (``reference.features[3].edges``)."""
        if not isinstance(document, dict):
            raise InvalidInputError("reference: must be a JSON object", {"field": "reference"})
        _only(document, {"format", "rows", "source", "inputs", "features"}, "")
        if document.get("format") != FORMAT:
            raise refuse("format", f"must be {FORMAT!r}")
        rows = document.get("rows")
        if type(rows) is not int or not 1 <= rows <= 2**53:
            raise refuse("rows", "must be a whole number from 1 to 2^53")
        inputs = _inputs(document.get("inputs"))
        names = [n for spec in inputs for n in spec.names()]
        if len(names) > MAX_FEATURES:
            raise refuse("inputs", f"describe {len(names)} features, more than {MAX_FEATURES}")
        features = document.get("features")
        if not isinstance(features, list) or len(features) != len(names):
            raise refuse(
                "features", f"must be a list of {len(names)} features, one per input feature"
            )
        stats = tuple(_feature(item, f"features[{j}]", names[j]) for j, item in enumerate(features))
        return cls(inputs, stats, rows, ReferenceSource.from_dict(document.get("source")))


def _only(document: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(document) - allowed)
    if unknown:
        prefix = f"{where}." if where else ""
        raise refuse(f"{prefix}{unknown[0]}", "is not a field of a reference")


def _text(
    document: dict[str, Any], key: str, where: str, limit: int, *, optional: bool = False
) -> str | None:
    value = document.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > limit or (not optional and not value):
        raise refuse(f"{where}.{key}", f"must be text of up to {limit} characters")
    return value


def _inputs(value: Any) -> tuple[InputFeatures, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_INPUTS:
        raise refuse("inputs", f"must be a list of 1 to {MAX_INPUTS} inputs")
    found: list[InputFeatures] = []
    for i, item in enumerate(value):
        where = f"inputs[{i}]"
        if not isinstance(item, dict):
            raise refuse(where, "must be an object")
        _only(item, {"name", "row_shape", "reduce", "features"}, where)
        name = _text(item, "name", where, 128)
        assert name is not None
        shape = item.get("row_shape")
        if (
            not isinstance(shape, list)
            or not 1 <= len(shape) <= MAX_RANK
            or any(type(d) is not int or not 1 <= d <= 2**31 - 1 for d in shape)
        ):
            raise refuse(f"{where}.row_shape", f"must be 1 to {MAX_RANK} positive sizes")
        expected = InputFeatures.of(name, tuple(shape))
        if item.get("reduce") != expected.reduce or item.get("features") != expected.features:
            raise refuse(
                where,
                f"a row of shape {shape} gives reduce {expected.reduce!r} and "
                f"{expected.features} features",
            )
        if any(spec.name == name for spec in found):
            raise refuse(f"{where}.name", f"input {name!r} is described twice")
        found.append(expected)
    return tuple(found)


def _numbers(value: Any, where: str, *, least: int, most: int) -> np.ndarray:
    if (
        not isinstance(value, list)
        or not least <= len(value) <= most
        or any(type(x) not in (int, float) for x in value)
    ):
        raise refuse(where, f"must be a list of {least} to {most} numbers")
    array = np.asarray(value, dtype=np.float64)
    if not np.isfinite(array).all():
        raise refuse(where, "must hold finite numbers only")
    return array


def _feature(item: Any, where: str, name: str) -> FeatureStats:
    if not isinstance(item, dict):
        raise refuse(where, "must be an object")
    _only(item, {"name", "quantiles", "edges", "proportions"}, where)
    if item.get("name") != name:
        raise refuse(f"{where}.name", f"must be {name!r} (features follow the inputs' order)")
    quantiles = _numbers(
        item.get("quantiles"), f"{where}.quantiles", least=QUANTILE_POINTS, most=QUANTILE_POINTS
    )
    if np.any(np.diff(quantiles) < 0):
        raise refuse(f"{where}.quantiles", "must not decrease")
    edges = _numbers(item.get("edges"), f"{where}.edges", least=0, most=MAX_EDGES)
    if np.any(np.diff(edges) <= 0):
        raise refuse(f"{where}.edges", "must increase strictly")
    proportions = _numbers(
        item.get("proportions"), f"{where}.proportions", least=len(edges) + 1, most=len(edges) + 1
    )
    if np.any(proportions < 0) or abs(float(proportions.sum()) - 1.0) > 1e-6:
        raise refuse(f"{where}.proportions", "must be shares from 0 to 1 that add up to 1")
    return FeatureStats(name, quantiles, edges, proportions)
