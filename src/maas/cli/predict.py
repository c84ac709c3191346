"""``maas predict``: send a V2 inference request from a JSON file to a running server."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from maas.cli.console import console, fail
from maas.cli.options import JSON_OPTION, MODEL_ARGUMENT
from maas.cli.render import print_json
from maas.cli.target import open_server

__all__ = ["predict"]


def predict(
    name: str = MODEL_ARGUMENT,
    version: str = typer.Argument(
        None, help="Version number or alias; default: the model's default route."
    ),
    input_file: Path = typer.Option(
        ...,
        "--input",
        "-i",
        exists=True,
        dir_okay=False,
        readable=True,
        help='A V2 inference request: {"inputs": [{"name", "datatype", "shape", "data"}]}.',
    ),
    headers: list[str] = typer.Option(
        None, "--header", help="NAME=VALUE, repeatable: e.g. a traffic policy's sticky header."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Predict with model NAME on a running server and print its outputs."""
    from maas.protocol.datatypes import datatype_of
    from maas.protocol.json_codec import decode_infer_request

    sent = {}
    for text in headers or []:
        key, separator, value = text.partition("=")
        if not separator or not key:
            fail(f"--header: expected NAME=VALUE, got {text!r}")
        sent[key] = value
    with open_server() as target:
        request = decode_infer_request(input_file.read_bytes())
        result = target.infer(
            name,
            {t.name: t.data for t in request.inputs},
            version=version,
            outputs=[o.name for o in request.outputs] if request.outputs else None,
            binary=False,
            headers=sent or None,
        )
    if as_json:
        print_json(
            {
                "model_name": result.model_name,
                "model_version": result.model_version,
                "outputs": [
                    {
                        "name": output,
                        "datatype": datatype_of(array.dtype),
                        "shape": list(array.shape),
                        "data": array.ravel().tolist(),
                    }
                    for output, array in result.outputs.items()
                ],
            }
        )
        return
    table = Table(
        "output",
        "datatype",
        "shape",
        "data",
        title=f"{result.model_name} version {result.model_version}",
    )
    for output, array in result.outputs.items():
        data = array.ravel().tolist()
        shown = json.dumps(data if len(data) <= 20 else [*data[:20], "..."], default=str)
        table.add_row(output, datatype_of(array.dtype), str(list(array.shape)), shown)
    console.print(table)
