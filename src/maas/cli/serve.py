"""``maas serve`` and ``maas quickstart``."""

from __future__ import annotations

import shlex
from enum import StrEnum
from pathlib import Path

import typer

from maas.cli.console import console, settings
from maas.cli.examples import write_digits_example
from maas.cli.train import submit_and_follow
from maas.config import Settings
from maas.errors import NotFoundError


class AuthMode(StrEnum):
    auto = "auto"
    required = "required"
    off = "off"


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
    tls_cert: Path = typer.Option(
        None,
        exists=True,
        dir_okay=False,
        help="PEM certificate (chain): serve REST and gRPC over TLS only (with --tls-key; "
        "or MAAS_TLS_CERT).",
    ),
    tls_key: Path = typer.Option(
        None, exists=True, dir_okay=False, help="PEM private key of --tls-cert (or MAAS_TLS_KEY)."
    ),
    auth: AuthMode = typer.Option(
        None,
        help="API keys (default auto, or MAAS_AUTH): 'auto' requires one once any exists "
        "and always off loopback (the server will not start there without one); "
        "'required' always; 'off' never: anyone who reaches the ports may do anything.",
    ),
) -> None:
    """Serve every registered model over KServe V2 REST and gRPC.

    A model's default version is the one under its production alias, else the newest.
    On 127.0.0.1 (the default) it answers without keys until the first key is created
    (`maas keys create`); on any other address it refuses to start without one.
    """
    from maas.serving.server import serve as run_server

    current = settings(
        host=host,
        port=port,
        grpc_port=grpc_port,
        workers=workers,
        auth=auth and auth.value,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    run_server(current, before_start=_announce)  # announces once both ports are held


def _announce(current: Settings) -> None:
    grpc = f", gRPC on {current.host}:{current.grpc_port}" if current.grpc_port else ""
    console.print(
        f"serving on [bold]{current.base_url}[/]{grpc} (OpenAPI at {current.base_url}/docs)"
    )


def quickstart(
    port: int = typer.Option(None, min=0, max=65535, help="Port (default 8080, or MAAS_PORT)."),
) -> None:
    """Train the digits demo model if there is none yet, then serve it and show a curl to try.

    The ports are checked first, so a taken port is said before any training starts.
    """
    from maas.serving.server import serve as run_server

    run_server(settings(port=port), before_start=_prepare_demo)


def _prepare_demo(current: Settings) -> None:
    from maas.cli.local import LocalTarget

    with LocalTarget(current) as target:
        try:
            version = target.get_version("digits")
            console.print(f"digits version {version.version} is registered; skipping training")
        except NotFoundError:
            submit_and_follow(target, {"model_name": "digits"})
    _print_try_it(current)
    _announce(current)


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
