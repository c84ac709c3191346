"""Datasets as fixed, hashed train/validation splits, so a run can be reproduced and traced.

``load_dataset`` reads what a ``DatasetSpec`` names (bundled digits, ``.npz``, CSV or an image
folder), maps labels to 0..K-1 and splits it; every problem with the data is an
``InvalidInputError`` that names the spec field (``"dataset.path: row 3, column 2 ..."``).

A server runs these on files it was pointed at by whoever can reach its API, so errors
name fields, rows, columns (by number) and the file's own name, never a cell, a label, a
header or the folder a path resolved to: a message must not become a way to read files.
"""

from __future__ import annotations

import csv
import hashlib
import math
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from maas.errors import InvalidInputError, describe

if TYPE_CHECKING:
    from maas.training.spec import DatasetSpec

__all__ = ["Dataset", "content_sha256", "load_dataset", "load_digits"]

_IMAGE_SUFFIXES: Final = frozenset({".png", ".jpg", ".jpeg"})


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/validation split; arrays are read-only so the frozen promise holds.

    ``content_sha256`` identifies the source data, not the split: the same data split
    with another seed keeps the same hash, and lineage records the seed beside it.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    num_classes: int
    content_sha256: str
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    class_names: tuple[str, ...] = ()

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample's shape: ``(features,)`` for tables, ``(C, H, W)`` for images."""
        return tuple(int(side) for side in self.x_train.shape[1:])

    @property
    def num_features(self) -> int:
        """Values per sample (the column count for 2-D data)."""
        return math.prod(self.input_shape)


def content_sha256(*arrays: np.ndarray) -> str:
    """sha256 over each array's dtype, shape and C-order bytes (so a reshape changes it)."""
    digest = hashlib.sha256()
    for array in arrays:
        contiguous = np.ascontiguousarray(array)
        digest.update(f"{contiguous.dtype.str}{contiguous.shape}".encode())
        digest.update(contiguous.tobytes())
    return digest.hexdigest()


def load_digits(seed: int = 0, validation_fraction: float = 0.2) -> Dataset:
    """scikit-learn's bundled 8x8 digits (no download), scaled to [0, 1], split stratified.

    >>> ds = load_digits()
    >>> ds.x_train.shape[1], ds.num_classes
    (64, 10)
    """
    from sklearn.datasets import load_digits as _sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = _sklearn_digits()
    x_raw = np.asarray(bunch.data)
    y_raw = np.asarray(bunch.target)
    x = (x_raw / 16.0).astype(np.float32)
    y = y_raw.astype(np.int64)
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=validation_fraction, random_state=seed, stratify=y
    )
    arrays = [np.ascontiguousarray(a) for a in (x_train, y_train, x_val, y_val)]
    for array in arrays:
        array.setflags(write=False)
    return Dataset(
        name="digits",
        x_train=arrays[0],
        y_train=arrays[1],
        x_val=arrays[2],
        y_val=arrays[3],
        num_classes=int(np.unique(y).size),
        content_sha256=content_sha256(x_raw, y_raw),
    )


def load_dataset(spec: DatasetSpec, seed: int) -> Dataset:
    """Load and split what ``spec`` names; the same spec and seed give the same split.

    Tables (npz, csv) are returned as read; ``normalize`` scales image pixels to [0, 1].
    """
    if spec.kind == "digits" and spec.test_fraction == 0.0 and spec.validation_path is None:
        digits = load_digits(seed=seed, validation_fraction=spec.validation_fraction)
        return replace(digits, class_names=tuple(str(i) for i in range(10)))
    if spec.kind == "digits":
        from sklearn.datasets import load_digits as _sklearn_digits

        bunch = _sklearn_digits()
        x_raw, y_raw = np.asarray(bunch.data), np.asarray(bunch.target)
        source = _Source((x_raw / 16.0).astype(np.float32), y_raw, "digits")
        return _split(spec, seed, source, None, None, content_sha256(x_raw, y_raw))
    assert spec.path is not None  # DatasetSpec requires a path for every other kind
    source = _read(spec, spec.path, "dataset.path")
    extra = {
        name: _read(spec, path, f"dataset.{name}")
        for name in ("validation_path", "test_path")
        if (path := getattr(spec, name)) is not None
    }
    sources = [source, *extra.values()]
    digest = content_sha256(*(a for s in sources for a in (s.x, s.labels)))
    return _split(spec, seed, source, extra.get("validation_path"), extra.get("test_path"), digest)


@dataclass(frozen=True, slots=True)
class _Source:
    """One file's samples with its raw labels (any values), before the class mapping."""

    x: np.ndarray
    labels: np.ndarray
    name: str


def _refuse(field: str, message: str) -> InvalidInputError:
    return InvalidInputError(f"{field}: {message}", {"field": field})


def _read(spec: DatasetSpec, path: Path, field: str) -> _Source:
    if not path.exists():
        raise _refuse(field, "no such file or folder")
    if spec.kind == "npz":
        return _read_npz(path, field)
    if spec.kind == "csv":
        assert spec.label_column is not None  # DatasetSpec requires it for csv
        return _read_csv(path, spec.label_column, field)
    return _read_images(spec, path, field)


def _read_npz(path: Path, field: str) -> _Source:
    """Arrays ``x`` and ``y``; object arrays are refused because they need unpickling."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            for key in ("x", "y"):
                if key not in archive.files:
                    found = ", ".join(archive.files) or "none"
                    raise _refuse(field, f"no array {key!r} in {path.name}; arrays are {found}")
            x, labels = archive["x"], archive["y"]
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise _refuse(
            field, f"{path.name} is not a readable .npz of plain arrays: {describe(error)}"
        ) from None
    if x.dtype.kind not in "biuf" or x.ndim < 2:
        raise _refuse(field, f"x must be numeric with one row per sample, got {x.dtype} {x.shape}")
    if labels.ndim != 1 or len(labels) != len(x):
        raise _refuse(field, f"y must be 1-D with {len(x)} labels, got shape {labels.shape}")
    if len(x) == 0:
        raise _refuse(field, "holds no samples")
    x = x.astype(np.float32)
    bad = np.argwhere(~np.isfinite(x.reshape(len(x), -1)))
    if bad.size:
        raise _refuse(field, f"x row {int(bad[0][0])} is not a number ({bad.shape[0]} such values)")
    return _Source(x, labels, path.name)


def _read_csv(path: Path, label_column: str, field: str) -> _Source:
    """Rows and columns are numbered as a spreadsheet shows them, from 1 (the header is
    row 1); a file that is not UTF-8 CSV text is refused without quoting it."""
    try:
        return _read_csv_rows(path, label_column, field)
    except (OSError, UnicodeDecodeError, csv.Error):
        raise _refuse(field, f"{path.name} is not a readable UTF-8 CSV file") from None


def _read_csv_rows(path: Path, label_column: str, field: str) -> _Source:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = csv.reader(handle)
        header = next(rows, None)
        if not header:
            raise _refuse(field, f"{path.name} is empty")
        if label_column not in header:
            raise InvalidInputError(
                f"dataset.label_column: no column {label_column!r} in the header of "
                f"{path.name} ({len(header)} columns)",
                {"field": "dataset.label_column"},
            )
        label_at = header.index(label_column)
        if len(header) < 2:
            raise _refuse(field, f"{path.name} has no feature columns besides {label_column!r}")
        features: list[list[float]] = []
        labels: list[str] = []
        for row_number, row in enumerate(rows, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise _refuse(field, f"row {row_number} has {len(row)} fields, not {len(header)}")
            features.append(_numbers(row, label_at, row_number, field))
            labels.append(row[label_at].strip())
    x = np.asarray(features, dtype=np.float32).reshape(len(features), len(header) - 1)
    return _Source(x, _label_array(labels), path.name)


def _numbers(row: list[str], skip: int, row_at: int, field: str) -> list[float]:
    values = []
    for column, cell in enumerate(row):
        if column == skip:
            continue
        try:
            value = float(cell)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):  # the cell is not quoted: it is the file's content
            raise _refuse(field, f"row {row_at}, column {column + 1} is not a number")
        values.append(value)
    return values


def _label_array(labels: list[str]) -> np.ndarray:
    """Integer labels when every label is one (so '10' sorts after '9'), else strings."""
    try:
        return np.asarray([int(label) for label in labels], dtype=np.int64)
    except ValueError:
        return np.asarray(labels, dtype=np.str_)


def _read_images(spec: DatasetSpec, root: Path, field: str) -> _Source:
    """One sub-folder per class; (N, C, H, W) float32, pixels in [0, 1] when normalised."""
    from PIL import Image, UnidentifiedImageError

    if not root.is_dir():
        raise _refuse(field, "not a folder of class sub-folders")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    pixels: list[np.ndarray] = []
    labels: list[str] = []
    first: tuple[str, tuple[int, ...]] | None = None
    for folder in classes:
        for file in sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES):
            name = f"{folder.name}/{file.name}"
            try:
                with Image.open(file) as opened:
                    image = opened.convert("L" if spec.grayscale else "RGB")
                if spec.image_size is not None:
                    height, width = spec.image_size
                    image = image.resize((width, height), Image.Resampling.BILINEAR)
                array = np.asarray(image, dtype=np.float32)
            except Image.DecompressionBombError:
                raise _refuse(
                    field, f"image {name} has more pixels than this server reads in one image"
                ) from None
            except (OSError, UnidentifiedImageError, ValueError):
                raise _refuse(field, f"image {name} is not a readable PNG/JPEG") from None
            if first is None:
                first = (name, array.shape)
            elif array.shape != first[1]:
                raise _refuse(
                    field,
                    f"image {name} is {_size(array.shape)}, others are {_size(first[1])} "
                    "(height x width); set dataset.image_size to resize them",
                )
            pixels.append(array)
            labels.append(folder.name)
    if not pixels:
        raise _refuse(field, "no PNG/JPEG images in its class sub-folders")
    x = np.stack(pixels)
    x = x[:, None, :, :] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    if spec.normalize:
        x = x / 255.0
    return _Source(np.ascontiguousarray(x, dtype=np.float32), np.asarray(labels), root.name)


def _size(shape: tuple[int, ...]) -> str:
    return f"{shape[0]}x{shape[1]}"


def _encode(labels: np.ndarray, class_names: tuple[str, ...], field: str) -> np.ndarray:
    index = {name: i for i, name in enumerate(class_names)}
    unknown = {str(label) for label in labels.tolist()} - index.keys()
    if unknown:  # the labels are the file's content: counted, not quoted
        count = f"{len(unknown)} distinct value" + ("s" if len(unknown) > 1 else "")
        raise _refuse(field, f"holds labels that are not among the training classes ({count})")
    return np.asarray([index[str(label)] for label in labels.tolist()], dtype=np.int64)


def _ratio_split(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int, field: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    try:
        parts: list[Any] = train_test_split(x, y, test_size=fraction, random_state=seed, stratify=y)
    except ValueError as error:
        raise _refuse(field, f"cannot split {len(y)} samples stratified: {error}") from None
    return parts[0], parts[2], parts[1], parts[3]


def _split(
    spec: DatasetSpec,
    seed: int,
    source: _Source,
    validation: _Source | None,
    test: _Source | None,
    digest: str,
) -> Dataset:
    """Stratified by ratio, or by the given files (mapped with the training classes)."""
    if len(source.labels) == 0:
        raise _refuse("dataset.path", "holds no samples")
    class_names = tuple(str(label) for label in np.unique(source.labels).tolist())
    if len(class_names) < 2:
        raise _refuse("dataset.path", f"needs at least two classes, found {len(class_names)}")
    x, y = source.x, _encode(source.labels, class_names, "dataset.path")
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    if test is not None:
        x_test, y_test = test.x, _encode(test.labels, class_names, "dataset.test_path")
    elif spec.test_fraction > 0.0:
        x, y, x_test, y_test = _ratio_split(x, y, spec.test_fraction, seed, "dataset.test_fraction")
    if validation is not None:
        y_val = _encode(validation.labels, class_names, "dataset.validation_path")
        x_val = validation.x
    else:
        fraction = spec.validation_fraction / (1.0 - (0.0 if test else spec.test_fraction))
        x, y, x_val, y_val = _ratio_split(x, y, fraction, seed, "dataset.validation_fraction")
    for field, other in (("dataset.validation_path", x_val), ("dataset.test_path", x_test)):
        if other is not None and other.shape[1:] != x.shape[1:]:
            raise _refuse(field, f"samples are {other.shape[1:]}, training samples {x.shape[1:]}")
    return Dataset(
        name=source.name,
        x_train=_frozen(x),
        y_train=_frozen(y),
        x_val=_frozen(x_val),
        y_val=_frozen(y_val),
        num_classes=len(class_names),
        content_sha256=digest,
        x_test=None if x_test is None else _frozen(x_test),
        y_test=None if y_test is None else _frozen(y_test),
        class_names=class_names,
    )


def _frozen(array: np.ndarray) -> np.ndarray:
    """Read-only, so the frozen ``Dataset`` promise holds."""
    contiguous = np.ascontiguousarray(array)
    contiguous.setflags(write=False)
    return contiguous
