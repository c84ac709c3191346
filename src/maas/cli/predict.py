"""``maas predict``: send a V2 inference request from a JSON file to a running server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import typer
from rich.table import Table

from maas.cli.console import console, fail, settings


def predict(
    name: str = typer.Argument(..., help="Model name."),
    input_file: Path = typer.Option(
        ...,
        "--input",
        "-i",
        exists=True,
        dir_okay=False,
        readable=True,
        help='A V2 inference request: {"inputs": [{"name", "datatype", "shape", "data"}]}.',
    ),
    version: str = typer.Option(None, "--version", "-v", help="Version number or alias."),
    url: str = typer.Option(None, help="Server URL; default http://MAAS_HOST:MAAS_PORT."),
    as_json: bool = typer.Option(False, "--json", help="Print the raw V2 response."),
) -> None:
    """Predict with model NAME on a running server and print its outputs."""
    base = (url or settings().base_url).rstrip("/")
    path = f"/v2/models/{name}" + (f"/versions/{version}" if version else "") + "/infer"
    try:
        response = httpx.post(
            base + path,
            content=input_file.read_bytes(),
            headers={"content-type": "application/json"},
            timeout=60.0,
        )
    except httpx.HTTPError as exc:
        fail(f"cannot reach the server at {base}: {exc} (is `maas serve` running?)")
    try:
        body = response.json()
    except json.JSONDecodeError:
        fail(f"server answered {response.status_code} with a body that is not JSON")
    if response.status_code != 200:
        fail(f"{response.status_code}: {body.get('error', body)}")
    if as_json:
        console.print_json(data=body)
        return
    table = Table(
        "output",
        "datatype",
        "shape",
        "data",
        title=f"{body['model_name']} version {body['model_version']}",
    )
    for output in body["outputs"]:
        data = output["data"]
        shown = json.dumps(data if len(data) <= 20 else [*data[:20], "..."])
        table.add_row(output["name"], output["datatype"], str(output["shape"]), shown)
    console.print(table)
