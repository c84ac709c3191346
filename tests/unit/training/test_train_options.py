from __future__ import annotations

import pytest

from maas.errors import InvalidInputError
from maas.training.pipeline import DATASETS, MODELS, TrainOptions
from maas.training.trainer import TrainConfig


def test_defaults() -> None:
    options = TrainOptions()
    assert (options.model_name, options.dataset, options.model) == ("digits", "digits", "mlp")
    assert options.config == TrainConfig()


@pytest.mark.parametrize(("field", "choices"), [("dataset", DATASETS), ("model", MODELS)])
def test_unknown_names_are_refused_naming_field_and_choices(
    field: str, choices: tuple[str, ...]
) -> None:
    with pytest.raises(InvalidInputError, match=rf"^{field}: unknown 'nope'") as caught:
        TrainOptions(**{field: "nope"})  # type: ignore[arg-type]  # parametrised field name
    assert caught.value.details == {"field": field, "value": "nope", "choices": list(choices)}
    assert all(choice in caught.value.message for choice in choices)
