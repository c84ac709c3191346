"""The ``maas`` command line: the root of every command group."""

from __future__ import annotations

import logging

import typer
from pydantic import ValidationError

from maas import __version__
from maas.cli import alias, db, jobs, models
from maas.cli.console import console, report_error
from maas.cli.evaluate import evaluate
from maas.cli.predict import predict
from maas.cli.serve import quickstart, serve
from maas.cli.train import train
from maas.errors import MaasError

__all__ = ["app", "main"]

app = typer.Typer(
    name="maas",
    help="maas: train, register and serve ML models over the KServe V2 protocol.\n\n"
    "Configuration comes from MAAS_* environment variables or ./maas.toml "
    "(MAAS_HOME, MAAS_DATABASE_URL, MAAS_ARTIFACTS_DIR, MAAS_HOST, MAAS_PORT).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command(help=quickstart.__doc__)(quickstart)
app.command(help=serve.__doc__)(serve)
app.command(help=train.__doc__)(train)
app.command(help=predict.__doc__)(predict)
app.command(help=evaluate.__doc__)(evaluate)
app.add_typer(jobs.app, name="jobs")
app.add_typer(models.app, name="models")
app.add_typer(alias.app, name="alias")
app.add_typer(db.app, name="db")


def _version(value: bool) -> None:
    if value:
        console.print(f"maas {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    # Our own progress at INFO; libraries (alembic, httpx, the ONNX exporter) only when they warn.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("maas").setLevel(logging.INFO)


def main() -> None:
    """Entry point of the ``maas`` script: maas errors become one red line and exit code 1."""
    try:
        app()
    except MaasError as exc:
        report_error(exc.message)
        raise SystemExit(1) from None
    except ValidationError as exc:  # settings from MAAS_* or maas.toml that do not validate
        report_error(f"invalid configuration: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
