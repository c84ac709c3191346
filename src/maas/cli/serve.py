"""``maas serve`` and ``maas quickstart``."""

from __future__ import annotations

import shlex

import typer

from maas.cli.console import console, settings
from maas.cli.examples import write_digits_example
from maas.cli.train import run_training
from maas.config import Settings
from maas.errors import NotFoundError
from maas.registry.service import Registry
from maas.serving.server import serve as run_server


def serve(
    host: str = typer.Option(None, help="Address to bind (default 127.0.0.1, or MAAS_HOST)."),
    port: int = typer.Option(None, min=0, max=65535, help="Port (default 8080, or MAAS_PORT)."),
) -> None:
    """Serve every registered model over KServe V2 REST (production alias, else newest version)."""
    current = settings(host=host, port=port)
    console.print(f"serving on [bold]{current.base_url}[/] (OpenAPI at {current.base_url}/docs)")
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
            version = run_training(registry)
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
