"""Loading an optimisation spec's data sets, with errors naming the spec's own field.

The training loader names ``dataset.*`` fields; here the same loader serves ``calibration``,
``evaluation`` and ``dataset``, so a refusal is renamed to the field the user wrote.
"""

from __future__ import annotations

from maas.errors import InvalidInputError
from maas.training.datasets import Dataset, load_dataset
from maas.training.spec import DatasetSpec

__all__ = ["load_named"]


def load_named(spec: DatasetSpec, seed: int, field: str) -> Dataset:
    """``load_dataset(spec, seed)``; a refusal of ``dataset.path`` becomes ``<field>.path``."""
    try:
        return load_dataset(spec, seed)
    except InvalidInputError as error:
        named = str(error.details.get("field", "dataset"))
        if not named.startswith("dataset") or field == "dataset":
            raise
        renamed = field + named.removeprefix("dataset")
        message = error.message.replace(named, renamed, 1)
        raise InvalidInputError(message, {**error.details, "field": renamed}) from None
