"""``maas serve`` and ``maas quickstart``."""

from __future__ import annotations

import shlex

import typer

from maas.cli.console import console, settings
from maas.cli.examples import write_digits_example
from maas.cli.job_client import LocalJobClient
from maas.cli.train import submit_and_follow
from maas.config import Settings
from maas.errors import NotFoundError
from maas.registry.service import Registry
from maas.serving.server import serve as run_server


def serve(
    host: str = typer.Option(None, help="Address to bind (default 127.0.0.1, or MAAS_HOST)."),
    port: int = typer.Option(
        None, min=0, max=65535, help="REST port (default 8080, or MAAS_PORT)."
    ),
    grpc_port: int = typer.Option(
        None, min=0, max=65535, help="gRPC port (default 8081, or MAAS_GRPC_PORT; 0: no gRPC)."
    ),
    workers: int = typer.Option(
        None,
        min=1,
        max=64,
        help="Server processes sharing the ports (default 1, or MAAS_WORKERS). More processes "
        "spread per-request work over cores; fewer form bigger batches.",
    ),
) -> None:
    """Serve every registered model over KServe V2 REST and gRPC.

    A model's default version is the one under its production alias, else the newest.
    """
    current = settings(host=host, port=port, grpc_port=grpc_port, workers=workers)
    grpc = f", gRPC on {current.host}:{current.grpc_port}" if current.grpc_port else ""
    console.print(
        f"serving on [bold]{current.base_url}[/]{grpc} (OpenAPI at {current.base_url}/docs)"
    )
    run_server(current)


def quickstart(
    port: int = typer.Option(None, min=0, max=65535, help="Port (default 8080, or MAAS_PORT)."),
) -> None:
    """Train the digits demo model if there is none yet, then serve it and show a curl to try."""
    current = settings(port=port)
    registry = Registry.from_settings(current)
    try:
        try:
            version = registry.resolve("digits")
            console.print(f"digits version {version.version} is registered; skipping training")
        except NotFoundError:
            client = LocalJobClient()
            try:
                submit_and_follow(client, {"model_name": "digits"})
            finally:
                client.close()
        _print_try_it(current)
        run_server(current, registry)
    finally:
        registry.close()


def _print_try_it(current: Settings) -> None:
    example = write_digits_example(current.home / "examples" / "digits-request.json")
    url = f"{current.base_url}/v2/models/digits/infer"
    console.print("\n[bold]Try it[/] (in another terminal, once the server says it is running):")
    console.print(
        f"curl -s -X POST {url} -H 'Content-Type: application/json' "
        f"-d @{shlex.quote(str(example.path))}",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )
    console.print(
        f"the request holds an image of the digit {example.label}; "
        "the reply's 'label' output is the predicted digit\n"
    )
