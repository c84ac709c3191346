"""``maas models reference`` (a version's input reference, built here from a dataset) and
``maas drift`` (how a server's live inputs compare with it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import typer
from rich.table import Table

from maas.cli.console import console, fail
from maas.cli.datasets import (
    DATASET_OPTION,
    GRAYSCALE_OPTION,
    IMAGE_SIZE_OPTION,
    LABEL_COLUMN_OPTION,
    SPEC_OPTION,
    read_dataset_spec,
)
from maas.cli.options import JSON_OPTION, MODEL_ARGUMENT, VERSION_ARGUMENT
from maas.cli.render import number, print_json, when
from maas.cli.target import open_server, open_target
from maas.monitoring.drift import Reference, ReferenceSource

if TYPE_CHECKING:
    from maas.client import InputReference, Version, VersionDrift
    from maas.training.datasets import Dataset

__all__ = ["drift", "reference"]

_SPLITS = ("train", "all")


def _rows(dataset: Dataset, split: str) -> np.ndarray:
    if split == "train":
        return dataset.x_train
    parts = [dataset.x_train, dataset.x_val]
    if dataset.x_test is not None:
        parts.append(dataset.x_test)
    return np.concatenate(parts)


def build_reference(version: Version, dataset: Dataset, split: str) -> Reference:
    """The reference of ``dataset``'s rows (its training split, or ``all`` of it) for the
    version's one input."""
    if len(version.signature.inputs) != 1:
        fail(
            f"version {version.version} of {version.model} has "
            f"{len(version.signature.inputs)} inputs and a dataset gives one: build the "
            "reference with maas.monitoring.drift.Reference.build and Client.set_reference"
        )
    source = ReferenceSource(
        "dataset",
        description=f"the {split} rows of {dataset.name}",
        dataset=dataset.name,
        sha256=dataset.content_sha256,
        split=split,
    )
    return Reference.build({version.signature.inputs[0].name: _rows(dataset, split)}, source)


def _describe(found: InputReference) -> str:
    source = found.source
    what = source.get("description") or source.get("kind", "")
    digest = f", sha256 {source['sha256'][:12]}" if source.get("sha256") else ""
    return (
        f"{len(found.reference.get('features', []))} features of {found.reference.get('rows')} "
        f"rows: {what}{digest}"
    )


def reference(
    name: str = MODEL_ARGUMENT,
    version: str = VERSION_ARGUMENT,
    dataset: str = DATASET_OPTION,
    spec_file: Path = SPEC_OPTION,
    label_column: str = LABEL_COLUMN_OPTION,
    image_size: tuple[int, int] = IMAGE_SIZE_OPTION,
    grayscale: bool = GRAYSCALE_OPTION,
    seed: int = typer.Option(None, help="Split seed (default: the spec's, else 0)."),
    split: str = typer.Option(
        "train",
        help="Which rows: train (the split training would train on, so that `maas "
        "evaluate` and held-out traffic stay unseen) or all.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show a version's input reference, or set it from a dataset (--dataset / --spec).

    The reference holds per input feature its quantiles and PSI bins (a row of at most 256
    values: each value; images: each channel's mean), which a server compares the
    version's live inputs with (`maas drift`). It is built here, on this machine: the
    dataset never goes to the server. Trained versions get one from their training split.
    """
    want_set = dataset is not None or spec_file is not None
    if want_set and split not in _SPLITS:
        fail(f"--split must be one of {', '.join(_SPLITS)}")
    with open_target() as target:
        if not want_set:
            found = target.get_reference(name, version)
        else:
            if importlib.util.find_spec("sklearn") is None:  # digits and the splits use it
                fail("a reference from a dataset needs the torch extra: pip install 'maas[torch]'")
            from maas.training.datasets import load_dataset

            dataset_spec, spec_seed = read_dataset_spec(
                dataset, spec_file, label_column, image_size, grayscale
            )
            chosen = target.get_version(name, version)
            rows = load_dataset(dataset_spec, seed if seed is not None else (spec_seed or 0))
            built = build_reference(chosen, rows, split)
            found = target.set_reference(name, chosen.version, built.to_dict())
    if as_json:
        print_json(found)
        return
    verb = "set" if want_set else "has"
    console.print(
        f"{name} version [bold]{found.version}[/] {verb} input reference revision "
        f"{found.revision} ({_describe(found)}), by {found.actor} at {when(found.updated_at)}",
        highlight=False,
    )


def _table(entry: VersionDrift, features: int) -> Table:
    table = Table("feature", "psi", "ks", title=f"version {entry.version}: largest PSI first")
    for feature in sorted(entry.features, key=lambda f: -f.psi)[:features]:
        table.add_row(feature.name, number(feature.psi), number(feature.ks))
    return table


def _summary(entries: list[VersionDrift]) -> Table:
    table = Table("version", "rows", "reference", "score", "threshold", "drifted", "computed")
    for entry in entries:
        ref: dict[str, Any] = entry.reference or {}
        source = ref.get("source", {})
        table.add_row(
            str(entry.version),
            f"{entry.rows}/{entry.window_rows}"
            + (f" (1 in {entry.sampled_every})" if entry.sampled_every > 1 else ""),
            str(source.get("description") or source.get("kind") or "none"),
            number(entry.score),
            number(entry.threshold),
            "-" if entry.drifted is None else ("yes" if entry.drifted else "no"),
            when(entry.computed_at),
        )
    return table


def drift(
    name: str = MODEL_ARGUMENT,
    features: int = typer.Option(10, "--features", help="Features to list per version."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Input drift of a model's loaded versions on the server: each version's live window
    against its reference, the summary score (the largest per-feature PSI; above the
    threshold, 0.2, the inputs have drifted) and the features that moved most."""
    with open_server() as client:
        found = client.drift(name)
    if as_json:
        print_json(found)
        return
    entries = list(found.versions)
    if not entries:
        console.print(f"no version of {name} is loaded on the server")
        return
    console.print(_summary(entries))
    for entry in entries:
        if entry.features and features > 0:
            console.print(_table(entry, features))
        elif entry.reference is None:
            console.print(
                f"version {entry.version} has no input reference: set one with "
                f"`maas models reference {name} {entry.version} --dataset ...`"
            )
