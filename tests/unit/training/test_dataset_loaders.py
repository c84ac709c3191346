"""npz, CSV and image-folder loaders: shapes, labels, class names and deterministic splits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from maas.errors import InvalidInputError
from maas.training.datasets import Dataset, load_dataset, load_digits
from maas.training.spec import DatasetSpec


def _spec(**fields: Any) -> DatasetSpec:
    return DatasetSpec.model_validate(fields)


def _npz(path: Path, rows: int = 60, **arrays: Any) -> Path:
    rng = np.random.default_rng(0)
    labels = np.array(["cat", "dog", "emu"] * (rows // 3))
    np.savez(path, **({"x": rng.normal(size=(rows, 4)), "y": labels} | arrays))
    return path


def _images(root: Path, sizes: dict[str, tuple[int, int]], per_class: int = 5) -> Path:
    for label, size in sizes.items():
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", size, (40 * i, 255, 0)).save(root / label / f"{i}.png")
    return root


def test_npz_maps_labels_to_indices_and_splits_stratified(tmp_path: Path) -> None:
    spec = _spec(kind="npz", path=_npz(tmp_path / "d.npz"), validation_fraction=0.25)
    ds = load_dataset(spec, seed=1)
    assert ds.class_names == ("cat", "dog", "emu") and ds.num_classes == 3
    assert ds.x_train.shape == (45, 4) and ds.x_val.shape == (15, 4)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert np.bincount(ds.y_val).tolist() == [5, 5, 5]
    assert ds.input_shape == (4,) and ds.num_features == 4 and ds.x_test is None
    again = load_dataset(spec, seed=1)
    assert np.array_equal(again.x_train, ds.x_train)
    other = load_dataset(spec, seed=2)
    assert not np.array_equal(other.x_train, ds.x_train)
    assert other.content_sha256 == ds.content_sha256
    assert not ds.x_train.flags.writeable


def test_npz_missing_key_and_pickled_arrays_are_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2)), labels=np.zeros(4))
    with pytest.raises(InvalidInputError, match=r"^dataset.path: no array 'y' in d.npz"):
        load_dataset(_spec(kind="npz", path=tmp_path / "d.npz"), seed=0)
    objects = np.array([{"a": 1}] * 4, dtype=object)
    np.savez(tmp_path / "p.npz", x=np.zeros((4, 2)), y=objects)
    with pytest.raises(InvalidInputError, match=r"^dataset.path: p.npz is not a readable"):
        load_dataset(_spec(kind="npz", path=tmp_path / "p.npz"), seed=0)


def test_csv_reads_features_and_string_labels_with_a_test_split(tmp_path: Path) -> None:
    lines = ["sepal,species,petal"] + [f"{i},{'ab'[i % 2]},{i * 0.5}" for i in range(40)]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = _spec(
        kind="csv",
        path=tmp_path / "d.csv",
        label_column="species",
        validation_fraction=0.25,
        test_fraction=0.25,
    )
    ds = load_dataset(spec, seed=0)
    assert ds.class_names == ("a", "b") and ds.name == "d.csv"
    assert ds.x_test is not None and ds.y_test is not None
    assert (len(ds.x_train), len(ds.x_val), len(ds.x_test)) == (20, 10, 10)
    assert ds.x_train.shape[1] == 2
    row = ds.x_train[0]
    assert row[1] == row[0] * 0.5 and ds.y_train[0] == int(row[0]) % 2


def test_csv_integer_labels_sort_numerically(tmp_path: Path) -> None:
    lines = ["f,label"] + [f"{i},{[2, 10][i % 2]}" for i in range(20)]
    (tmp_path / "d.csv").write_text("\n".join(lines), encoding="utf-8")
    ds = load_dataset(_spec(kind="csv", path=tmp_path / "d.csv", label_column="label"), seed=0)
    assert ds.class_names == ("2", "10")


def test_images_load_as_nchw_in_unit_range(tmp_path: Path) -> None:
    root = _images(tmp_path / "pets", {"dog": (6, 4), "cat": (6, 4)})
    ds = load_dataset(_spec(kind="images", path=root, validation_fraction=0.2), seed=0)
    assert ds.class_names == ("cat", "dog")
    assert ds.input_shape == (3, 4, 6) and len(ds.x_train) == 8
    assert ds.x_train.dtype == np.float32
    assert float(ds.x_train.min()) >= 0.0 and float(ds.x_train.max()) == 1.0


def test_images_resized_and_grayscale(tmp_path: Path) -> None:
    root = _images(tmp_path / "pets", {"dog": (6, 4), "cat": (9, 7)})
    spec = _spec(kind="images", path=root, image_size=(5, 3), grayscale=True)
    assert load_dataset(spec, seed=0).input_shape == (1, 5, 3)


@pytest.mark.parametrize(
    ("sizes", "message"),
    [({"cat": (4, 4)}, "at least two classes"), ({}, "no PNG/JPEG images")],
)
def test_image_folders_without_two_classes_are_refused(
    tmp_path: Path, sizes: dict[str, tuple[int, int]], message: str
) -> None:
    root = _images(tmp_path / "pets", sizes)
    root.mkdir(exist_ok=True)
    with pytest.raises(InvalidInputError, match=f"^dataset.path: .*{message}"):
        load_dataset(_spec(kind="images", path=root), seed=0)


def test_given_validation_and_test_files_use_the_training_classes(tmp_path: Path) -> None:
    train = _npz(tmp_path / "train.npz")
    spec = _spec(
        kind="npz",
        path=train,
        validation_path=_npz(tmp_path / "val.npz", rows=9),
        test_path=_npz(tmp_path / "test.npz", rows=6),
    )
    ds = load_dataset(spec, seed=0)
    assert (len(ds.x_train), len(ds.x_val)) == (60, 9)
    assert ds.y_test is not None and ds.y_test.tolist() == [0, 1, 2, 0, 1, 2]
    np.savez(tmp_path / "bad.npz", x=np.zeros((2, 4)), y=np.array(["cat", "yak"]))
    unknown = r"^dataset.validation_path: holds labels that are not among the training classes"
    with pytest.raises(InvalidInputError, match=unknown + r" \(1 distinct value\)$"):
        load_dataset(spec.model_copy(update={"validation_path": tmp_path / "bad.npz"}), seed=0)


def test_digits_kind_matches_load_digits_and_can_hold_out_a_test_set() -> None:
    plain = load_dataset(_spec(), seed=0)
    reference = load_digits(seed=0)
    assert np.array_equal(plain.x_train, reference.x_train)
    assert plain.content_sha256 == reference.content_sha256
    assert plain.class_names == tuple(str(i) for i in range(10))
    held_out: Dataset = load_dataset(_spec(test_fraction=0.1), seed=0)
    assert held_out.x_test is not None and len(held_out.x_test) == 180
    assert held_out.content_sha256 == reference.content_sha256


def test_files_without_samples_are_refused_not_crashed_on(tmp_path: Path) -> None:
    """An empty .npz once crashed the loader (reshape of a 0-row array) instead of refusing."""
    empty = tmp_path / "empty.npz"
    np.savez(empty, x=np.zeros((0, 4), np.float32), y=np.zeros((0,), np.int64))
    header_only = tmp_path / "header.csv"
    header_only.write_text("a,b,label\n")
    for spec in (
        DatasetSpec(kind="npz", path=empty),
        DatasetSpec(kind="csv", path=header_only, label_column="label"),
    ):
        with pytest.raises(InvalidInputError, match=r"^dataset.path: holds no samples$"):
            load_dataset(spec, seed=0)
