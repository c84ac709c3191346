"""Job specs: parsed from YAML/TOML/JSON, and every bad spec refused with its field named."""

from __future__ import annotations

import json
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from maas.errors import InvalidInputError
from maas.training.spec import JobSpec, load_spec, parse_spec, validate_spec


def _refused(field: str, call: Any, *args: Any) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as caught:
        call(*args)
    assert caught.value.message.startswith(f"{field}: "), caught.value.message
    assert caught.value.details["field"] == field
    return caught.value


def _csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _csv_spec(path: Path, label: str = "label") -> JobSpec:
    return parse_spec({"dataset": {"kind": "csv", "path": str(path), "label_column": label}})


def test_yaml_spec_resolves_relative_paths_against_its_folder(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(
        "model_name: iris\n"
        "model: {name: cnn, options: {channels: [8, 16]}}\n"
        "dataset: {kind: csv, path: data/iris.csv, label_column: species}\n"
        "hyperparameters:\n  epochs: 3\n  optimizer: sgd\n  schedule: cosine\n"
        "  early_stopping: {metric: val_accuracy, patience: 2}\n"
        "init_from: iris:3\n",
        encoding="utf-8",
    )
    spec = load_spec(tmp_path / "job.yaml")
    assert spec.dataset.path == tmp_path.resolve() / "data" / "iris.csv"
    assert spec.model.options == {"channels": [8, 16]}
    assert spec.hyperparameters.optimizer == "sgd"
    assert spec.hyperparameters.early_stopping is not None
    assert spec.hyperparameters.early_stopping.patience == 2
    assert spec.init_from == "iris:3"


def test_toml_and_json_specs_parse_to_the_same_job(tmp_path: Path) -> None:
    (tmp_path / "job.toml").write_text(
        '[dataset]\nkind = "images"\npath = "/data/pets"\nimage_size = [32, 32]\n'
        "[dataset.augment]\nflip = true\ncrop = 4\n"
        "[hyperparameters]\nepochs = 2\n",
        encoding="utf-8",
    )
    document = {
        "dataset": {
            "kind": "images",
            "path": "/data/pets",
            "image_size": [32, 32],
            "augment": {"flip": True, "crop": 4},
        },
        "hyperparameters": {"epochs": 2},
    }
    (tmp_path / "job.json").write_text(json.dumps(document), encoding="utf-8")
    from_toml = load_spec(tmp_path / "job.toml")
    assert from_toml == load_spec(tmp_path / "job.json")
    assert from_toml.dataset.image_size == (32, 32)
    assert from_toml.dataset.augment.crop == 4
    assert from_toml.model.name == "mlp" and from_toml.device == "auto"


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"hyperparameters": {"epochs": 0}}, "hyperparameters.epochs"),
        ({"dataset": {"kind": "digits", "colour": True}}, "dataset.colour"),
        ({"learning_rate": 0.1}, "learning_rate"),
        ({"model": {"name": "transformer"}}, "model.name"),
        ({"dataset": {"kind": "csv", "path": "a.csv"}}, "dataset.label_column"),
        ({"dataset": {"kind": "npz"}}, "dataset.path"),
        ({"dataset": {"validation_fraction": 0.5, "test_fraction": 0.5}}, "dataset.test_fraction"),
        (
            {"hyperparameters": {"early_stopping": {"patience": 0}}},
            "hyperparameters.early_stopping.patience",
        ),
        ({"init_from": "no-version"}, "init_from"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_documents_are_refused_naming_the_field(document: dict[str, Any], field: str) -> None:
    _refused(field, parse_spec, document)


def test_unreadable_spec_file_is_refused(tmp_path: Path) -> None:
    _refused("spec", load_spec, tmp_path / "missing.yaml")
    (tmp_path / "job.ini").write_text("x=1", encoding="utf-8")
    _refused("spec", load_spec, tmp_path / "job.ini")
    (tmp_path / "list.json").write_text("[1, 2]", encoding="utf-8")
    _refused("spec", load_spec, tmp_path / "list.json")


def test_missing_data_file_is_refused(tmp_path: Path) -> None:
    error = _refused("dataset.path", validate_spec, _csv_spec(tmp_path / "nope.csv"))
    assert error.message == "dataset.path: no such file or folder"  # no server path echoed


def test_unknown_label_column_counts_the_columns_without_quoting_the_header(
    tmp_path: Path,
) -> None:
    path = _csv(tmp_path / "d.csv", "a,SECRET_HEADER,label\n1,2,x\n")
    error = _refused("dataset.label_column", validate_spec, _csv_spec(path, "kind"))
    assert error.message == (
        "dataset.label_column: no column 'kind' in the header of d.csv (3 columns)"
    )
    assert error.details == {"field": "dataset.label_column"}


@pytest.mark.parametrize("cell", ["nan", "abc", "", "SECRET_LINE_IN_FILE"])
def test_nan_or_non_numeric_feature_names_row_and_column_not_the_cell(
    tmp_path: Path, cell: str
) -> None:
    path = _csv(tmp_path / "d.csv", f"a,b,label\n1,2,x\n3,{cell},y\n")
    error = _refused("dataset.path", validate_spec, _csv_spec(path))
    assert error.message == "dataset.path: row 3, column 2 is not a number"


@pytest.mark.parametrize(
    "content", [b"\x89PNG\r\n\x1a\n\xff\xfe SECRET", b"a,b,label\n1,2,x\n3,4,\xff\xfeSECRET\n"]
)
def test_a_file_that_is_not_csv_text_is_refused_without_quoting_it(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(content)
    error = _refused("dataset.path", validate_spec, _csv_spec(path))
    assert error.message == "dataset.path: d.csv is not a readable UTF-8 CSV file"


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG header claiming ``width`` x ``height`` pixels, with no pixels behind it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_an_image_claiming_too_many_pixels_is_refused_naming_it(tmp_path: Path) -> None:
    """PIL's DecompressionBombError is no OSError: it escaped the check as a traceback."""
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        Image.new("L", (4, 4)).save(tmp_path / label / "a.png")
    (tmp_path / "dog" / "b.png").write_bytes(_png_claiming(20_000, 20_000))
    spec = parse_spec({"dataset": {"kind": "images", "path": str(tmp_path)}})
    error = _refused("dataset.path", validate_spec, spec)
    assert error.message == (
        "dataset.path: image dog/b.png has more pixels than this server reads in one image"
    )


def test_labels_outside_the_training_classes_are_counted_not_quoted(tmp_path: Path) -> None:
    rows = "".join(f"{i},{'ab'[i % 2]}\n" for i in range(12))
    train = _csv(tmp_path / "t.csv", "f,label\n" + rows)
    validation = _csv(tmp_path / "v.csv", "f,label\n1,a\n2,SECRET_LABEL\n")
    spec = parse_spec(
        {
            "dataset": {
                "kind": "csv",
                "path": str(train),
                "label_column": "label",
                "validation_path": str(validation),
            }
        }
    )
    error = _refused("dataset.validation_path", validate_spec, spec)
    assert error.message.endswith("not among the training classes (1 distinct value)")


def test_inconsistent_image_sizes_are_refused(tmp_path: Path) -> None:
    for label, size in (("cat", (8, 8)), ("dog", (12, 10))):
        (tmp_path / label).mkdir()
        Image.new("RGB", size).save(tmp_path / label / "a.png")
    spec = parse_spec({"dataset": {"kind": "images", "path": str(tmp_path)}})
    error = _refused("dataset.path", validate_spec, spec)
    assert "image dog/a.png is 10x12, others are 8x8" in error.message


def test_custom_factory_must_import_and_be_callable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_models_for_spec.py").write_text("NOT_CALLABLE = 3\ndef build(): ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    data = np.tile(np.arange(2, dtype=np.float32), (10, 1))
    np.savez(tmp_path / "d.npz", x=data, y=np.array([0, 1] * 5))
    dataset = {"kind": "npz", "path": str(tmp_path / "d.npz"), "validation_fraction": 0.4}
    for name in ("no_such_module_xyz:build", "my_models_for_spec:NOT_CALLABLE"):
        spec = parse_spec({"model": {"name": name}, "dataset": dataset})
        _refused("model.name", validate_spec, spec)
    validate_spec(parse_spec({"model": {"name": "my_models_for_spec:build"}, "dataset": dataset}))
    sys.modules.pop("my_models_for_spec", None)


def test_unknown_model_is_refused_by_validate_spec_too() -> None:
    spec = JobSpec.model_construct(model=JobSpec().model.model_copy(update={"name": "bert"}))
    _refused("model.name", validate_spec, spec)


def test_a_good_spec_validates() -> None:
    validate_spec(parse_spec({"hyperparameters": {"epochs": 1}}))


def test_overrides_set_nested_fields_read_as_yaml_and_resolve_dataset_paths(
    tmp_path: Path,
) -> None:
    from maas.training.spec import with_overrides

    document = {"model": {"name": "mlp"}, "hyperparameters": {"epochs": 3}}
    changed = with_overrides(
        document,
        [
            "hyperparameters.epochs=5",
            "model.options.hidden=[32, 16]",
            "dataset.kind=npz",
            "dataset.path=data/d.npz",
            "dataset.augment.flip=true",
        ],
        tmp_path,
    )
    assert changed == {
        "model": {"name": "mlp", "options": {"hidden": [32, 16]}},
        "hyperparameters": {"epochs": 5},
        "dataset": {"kind": "npz", "path": str(tmp_path / "data/d.npz"), "augment": {"flip": True}},
    }
    assert document["hyperparameters"] == {"epochs": 3}  # the original is left alone


@pytest.mark.parametrize(
    ("assignment", "field"),
    [("nonsense", "set"), ("=3", "set"), ("model.name.x=1", "model.name.x"), ("a=[1", "a")],
)
def test_bad_overrides_name_what_is_wrong(assignment: str, field: str) -> None:
    from maas.training.spec import with_overrides

    with pytest.raises(InvalidInputError) as caught:
        with_overrides({"model": {"name": "mlp"}}, [assignment], Path("."))
    assert caught.value.details["field"] == field
