"""The ``maas`` command line: the root of every command group."""

from __future__ import annotations

import logging

import typer
from pydantic import ValidationError

from maas import __version__
from maas.cli import alias, db, jobs, keys, models, optimize, traffic
from maas.cli.alerts import alerts
from maas.cli.audit import audit, deployments
from maas.cli.console import console, report_error
from maas.cli.drift import drift
from maas.cli.evaluate import evaluate
from maas.cli.predict import predict
from maas.cli.promote import promote, rollback
from maas.cli.serve import quickstart, serve
from maas.cli.target import TargetChoice, choose
from maas.cli.train import train
from maas.errors import MaasError, UnauthenticatedError

__all__ = ["app", "main"]

app = typer.Typer(
    name="maas",
    help="maas: train, register, serve and operate ML models over the KServe V2 protocol.\n\n"
    "Every command acts through this configuration's server when one answers at "
    "MAAS_HOST:MAAS_PORT and serves this configuration's registry, else on the registry "
    "directly; --server URL (or MAAS_SERVER) picks a server, --local the registry.\n\n"
    "Short flags mean one thing everywhere: -n a model name, -f a file to read, -o where "
    "to write, -i a request to send, -d detach, -q print only the resulting id, -a the "
    "alias to move, -m filter by model. Every list and show takes --json.\n\n"
    "Configuration: MAAS_* environment variables or ./maas.toml (MAAS_HOME, "
    "MAAS_DATABASE_URL, MAAS_ARTIFACTS_DIR, MAAS_HOST, MAAS_PORT, MAAS_SERVER, "
    "MAAS_API_KEY: the key sent to servers, see maas keys).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
app.command(help=quickstart.__doc__)(quickstart)
app.command(help=serve.__doc__)(serve)
app.command(help=train.__doc__)(train)
app.command(help=predict.__doc__)(predict)
app.command(help=evaluate.__doc__)(evaluate)
app.command(help=promote.__doc__)(promote)
app.command(help=rollback.__doc__)(rollback)
app.command(help=audit.__doc__)(audit)
app.command(help=deployments.__doc__)(deployments)
app.command(help=drift.__doc__)(drift)
app.command(help=alerts.__doc__)(alerts)
app.add_typer(models.app, name="models")
app.add_typer(alias.app, name="alias")
app.add_typer(traffic.app, name="traffic")
app.add_typer(jobs.app, name="jobs")
app.add_typer(optimize.app, name="optimize")
app.add_typer(keys.app, name="keys")
app.add_typer(db.app, name="db")


def _version(value: bool) -> None:
    if value:
        console.print(f"maas {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    server: str = typer.Option(
        None,
        "--server",
        "-s",
        metavar="URL",
        help="Act through the maas server at URL (default: MAAS_SERVER, else this "
        "configuration's server if it serves this configuration's registry).",
    ),
    local: bool = typer.Option(
        False, "--local", help="Act on this configuration's registry directly, not a server."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    if server and local:
        raise typer.BadParameter("give --server or --local, not both")
    choose(TargetChoice(server=server, local=local))
    # Our own progress at INFO; libraries (alembic, httpx, the ONNX exporter) only when they warn.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("maas").setLevel(logging.INFO)
    # The registry warns a server's log about a database that failed it; the CLI says so in
    # its one error line instead (with the database's own words, see ``_database_reason``).
    logging.getLogger("maas.registry").setLevel(logging.ERROR)


def _database_reason(exc: MaasError) -> str:
    """The database driver's first line, for a registry failure: the CLI's user runs the
    database (or mistyped MAAS_DATABASE_URL), so the reason is theirs to read."""
    cause = exc.__cause__
    if exc.details.get("database") != "registry" or cause is None:
        return ""
    return f": {_first_line(getattr(cause, 'orig', None) or cause)}"


def _first_line(exc: BaseException) -> str:
    """An exception's first line as it is (paths included: here they are the user's own)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def main() -> None:
    """Entry point of the ``maas`` script: every failure becomes one red line and exit code 1
    (a traceback helps nobody who typed a command; a maas error already says what to do)."""
    try:
        app()
    except UnauthenticatedError as exc:  # a server's words; say where the CLI's key comes from
        hint = "" if "MAAS_API_KEY" in exc.message else " (the CLI sends the key in MAAS_API_KEY)"
        report_error(exc.message + hint)
        raise SystemExit(1) from None
    except MaasError as exc:
        report_error(exc.message + _database_reason(exc))
        raise SystemExit(1) from None
    except ValidationError as exc:  # settings from MAAS_* or maas.toml that do not validate
        report_error(f"invalid configuration: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as exc:  # a bug, or a failure no layer below named: still one line
        report_error(f"unexpected failure: {_first_line(exc)}")
        raise SystemExit(1) from None
