"""How commands name a dataset (``maas evaluate``, ``maas models reference``): bundled
digits, an ``.npz`` or ``.csv`` file, an image folder, or a job spec's dataset section."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from maas.errors import InvalidInputError

if TYPE_CHECKING:
    from maas.training.spec import DatasetSpec

__all__ = [
    "DATASET_OPTION",
    "GRAYSCALE_OPTION",
    "IMAGE_SIZE_OPTION",
    "LABEL_COLUMN_OPTION",
    "SPEC_OPTION",
    "read_dataset_spec",
]

DATASET_OPTION: Any = typer.Option(
    None,
    "--dataset",
    help="digits, an .npz file (arrays x, y), a .csv file (with --label-column) "
    "or an image folder (one sub-folder per class).",
)
SPEC_OPTION: Any = typer.Option(
    None,
    "--spec",
    exists=True,
    dir_okay=False,
    readable=True,
    help="A job spec file: its dataset section and seed are used.",
)
LABEL_COLUMN_OPTION: Any = typer.Option(None, "--label-column", help="The CSV's label column.")
IMAGE_SIZE_OPTION: Any = typer.Option(
    None, "--image-size", metavar="H W", help="Resize images to height H, width W."
)
GRAYSCALE_OPTION: Any = typer.Option(False, "--grayscale", help="Read images as one channel.")


def read_dataset_spec(
    dataset: str | None,
    spec_file: Path | None,
    label_column: str | None,
    image_size: tuple[int, int] | None,
    grayscale: bool,
) -> tuple[DatasetSpec, int | None]:
    """The dataset section (and the spec's seed) that the options describe."""
    from maas.training.spec import load_spec, parse_spec

    if (dataset is None) == (spec_file is None):
        raise InvalidInputError("dataset: give exactly one of --dataset and --spec")
    if spec_file is not None:
        spec = load_spec(spec_file)
        return spec.dataset, spec.hyperparameters.seed
    assert dataset is not None
    document: dict[str, Any] = {"kind": "digits"}
    if dataset != "digits":
        path = Path(dataset)
        if path.is_dir():
            document = {"kind": "images", "path": path, "grayscale": grayscale}
            if image_size is not None:
                document["image_size"] = image_size
        elif path.suffix.lower() in (".npz", ".csv"):
            document = {"kind": path.suffix.lower()[1:], "path": path}
        else:
            raise InvalidInputError(
                f"dataset: {dataset!r} is not 'digits', an .npz or .csv file or an image folder",
                {"field": "dataset"},
            )
    if label_column is not None:
        document["label_column"] = label_column  # refused, naming the field, unless a CSV
    return parse_spec({"dataset": document}).dataset, None
