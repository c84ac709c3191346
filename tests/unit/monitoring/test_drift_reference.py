"""Reference statistics: features named and reduced as documented, bins that handle
constant and point-mass features, and a document that round-trips and is validated
strictly (errors name the field)."""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pytest

from maas.errors import InvalidInputError
from maas.monitoring.drift import (
    FORMAT,
    MAX_FEATURES,
    QUANTILE_POINTS,
    InputFeatures,
    Reference,
    ReferenceSource,
)

SOURCE = ReferenceSource(
    "training", description="the training split of t", dataset="t", sha256="a" * 64, split="train"
)


def _table(rows: int = 500, columns: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, columns)).astype(np.float32)


def _document(**changes: Any) -> dict[str, Any]:
    document = Reference.build({"x": _table()}, SOURCE).to_dict()
    document.update(changes)
    return document


def test_every_element_of_a_small_row_is_a_feature() -> None:
    reference = Reference.build({"x": _table(columns=4)}, SOURCE)
    assert [f.name for f in reference.features] == ["x[0]", "x[1]", "x[2]", "x[3]"]
    assert reference.inputs == (InputFeatures("x", (4,), "elements", 4),)
    assert reference.rows == 500
    stats = reference.features[0]
    assert len(stats.quantiles) == QUANTILE_POINTS
    assert np.all(np.diff(stats.edges) > 0) and len(stats.edges) == 9  # ten quantile bins
    np.testing.assert_allclose(stats.proportions, 0.1, atol=0.01)


def test_rows_of_a_matrix_are_flattened_in_c_order() -> None:
    rows = np.arange(2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3)
    spec = InputFeatures.of("m", (2, 3))
    assert spec.names()[4] == "m[4]"
    np.testing.assert_array_equal(spec.extract(rows), rows.reshape(2, 6))


def test_images_reduce_to_channel_means() -> None:
    images = np.zeros((6, 3, 16, 16), np.float32)
    images[:, 1] = 0.5
    images[:, 2, :8] = 1.0  # half of channel 2
    spec = InputFeatures.of("pixels", (3, 16, 16))
    assert (spec.reduce, spec.features) == ("channel_mean", 3)
    assert spec.names() == ["pixels[c0]", "pixels[c1]", "pixels[c2]"]
    means = spec.extract(images)
    assert means is not None and means.tolist() == [[0.0, 0.5, 0.5]] * 6
    # Another height and width (a variable dim) still fits; other channels do not.
    other_size = spec.extract(np.ones((2, 3, 8, 4), np.float32))
    assert other_size is not None and other_size.shape == (2, 3)
    assert spec.extract(np.ones((2, 4, 16, 16), np.float32)) is None


def test_a_wide_first_axis_is_grouped_to_the_cap() -> None:
    spec = InputFeatures.of("wide", (1000,))
    assert (spec.reduce, spec.features) == ("channel_mean", 256)
    names = spec.names()
    assert names[:2] == ["wide[c0-2]", "wide[c3-6]"] and names[-1] == "wide[c996-999]"
    assert len(names) == 256
    row = np.arange(1000, dtype=np.float64)[None]
    features = spec.extract(row)
    assert features is not None and features.shape == (1, 256)
    assert features[0, :2].tolist() == [1.0, 4.5]


def test_a_constant_feature_gets_bins_below_at_and_above_its_value() -> None:
    rows = np.column_stack([np.zeros(200), np.linspace(0, 1, 200)])
    stats = Reference.build({"x": rows}, SOURCE).features[0]
    assert len(stats.edges) == 2 and stats.edges[0] == 0.0 and stats.edges[1] > 0.0
    np.testing.assert_array_equal(stats.proportions, [0.0, 1.0, 0.0])


def test_a_point_mass_gets_a_bin_of_its_own() -> None:
    column = np.concatenate([np.zeros(700), np.linspace(0.1, 1.0, 300)])  # 70 % zeros
    stats = Reference.build({"x": column[:, None]}, SOURCE).features[0]
    at_zero = np.searchsorted(stats.edges, 0.0, side="right")
    assert stats.proportions[at_zero] == pytest.approx(0.7)
    assert stats.proportions[:at_zero].sum() == 0.0


def test_non_finite_rows_and_bytes_inputs_are_left_out() -> None:
    rows = _table(rows=10)
    rows[3, 1] = np.nan
    words = np.array([[b"a"]] * 10, dtype=object)
    reference = Reference.build({"x": rows, "words": words}, SOURCE)
    assert reference.rows == 9 and [i.name for i in reference.inputs] == ["x"]
    with pytest.raises(InvalidInputError, match="no numeric features"):
        Reference.build({"words": words}, SOURCE)


def test_the_document_round_trips_through_json() -> None:
    reference = Reference.build({"x": _table(), "y": _table(columns=2, seed=1)}, SOURCE)
    document = json.loads(json.dumps(reference.to_dict()))
    assert document["format"] == FORMAT
    again = Reference.from_dict(document)
    assert again.to_dict() == reference.to_dict()
    assert again.source == SOURCE
    assert reference.summary() == {"source": SOURCE.to_dict(), "rows": 500, "features": 6}


def test_extract_leaves_out_feeds_that_do_not_fit() -> None:
    reference = Reference.build({"x": _table()}, SOURCE)
    fits = {"x": _table(rows=3)}
    wrong_width = {"x": _table(rows=2, columns=5)}
    missing = {"other": _table(rows=2)}
    words = {"x": np.array([["a"] * 4], dtype=object)}
    assert reference.extract([fits, wrong_width, missing, words, fits]).shape == (6, 4)
    assert reference.extract([]).shape == (0, 4)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.update(format="other"), "reference.format"),
        (lambda d: d.update(rows=0), "reference.rows"),
        (lambda d: d.update(rows=True), "reference.rows"),
        (lambda d: d.update(extra=1), "reference.extra"),
        (lambda d: d.update(source={"kind": "guess"}), "reference.source.kind"),
        (lambda d: d["source"].update(sha256="XYZ"), "reference.source.sha256"),
        (lambda d: d["source"].update(path="/etc"), "reference.source.path"),
        (lambda d: d.update(inputs=[]), "reference.inputs"),
        (lambda d: d["inputs"][0].update(row_shape=[0]), "reference.inputs[0].row_shape"),
        (lambda d: d["inputs"][0].update(features=3), "reference.inputs[0]"),
        (lambda d: d["inputs"][0].update(reduce="channel_mean"), "reference.inputs[0]"),
        (lambda d: d["inputs"].append(dict(d["inputs"][0])), "reference.inputs[1].name"),
        (lambda d: d.update(features=d["features"][:3]), "reference.features"),
        (lambda d: d["features"][1].update(name="x[7]"), "reference.features[1].name"),
        (lambda d: d["features"][2]["quantiles"].pop(), "reference.features[2].quantiles"),
        (lambda d: d["features"][2]["quantiles"].reverse(), "reference.features[2].quantiles"),
        (lambda d: d["features"][0]["edges"].reverse(), "reference.features[0].edges"),
        (lambda d: d["features"][0]["edges"].__setitem__(0, "1"), "reference.features[0].edges"),
        (
            lambda d: d["features"][0]["edges"].__setitem__(0, float("inf")),
            "reference.features[0].edges",
        ),
        (
            lambda d: d["features"][0]["edges"].extend([50.0 + i for i in range(20)]),
            "reference.features[0].edges",
        ),
        (lambda d: d["features"][3]["proportions"].pop(), "reference.features[3].proportions"),
        (
            lambda d: d["features"][3]["proportions"].__setitem__(0, 0.5),
            "reference.features[3].proportions",
        ),
    ],
)
def test_a_bad_document_is_refused_naming_the_field(mutate: Any, field: str) -> None:
    document = copy.deepcopy(_document())
    mutate(document)
    with pytest.raises(InvalidInputError) as caught:
        Reference.from_dict(document)
    assert caught.value.details["field"] == field
    assert caught.value.message.startswith(f"{field}:")


def test_too_many_features_are_refused() -> None:
    inputs = [
        {"name": f"x{i}", "row_shape": [256], "reduce": "elements", "features": 256}
        for i in range(5)
    ]
    document = _document(inputs=inputs)
    with pytest.raises(InvalidInputError, match=f"more than {MAX_FEATURES}") as caught:
        Reference.from_dict(document)
    assert caught.value.details["field"] == "reference.inputs"
    with pytest.raises(InvalidInputError, match="must be a JSON object"):
        Reference.from_dict([1, 2])
