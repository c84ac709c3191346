"""``maas keys``: API keys, who may call a server and what each may do.

A key's token is printed once, by ``create``; the registry keeps only a hash of it, so
neither ``list`` nor anything else can show it again. Keys made with ``maas --local`` (or
with no server answering) go straight into the registry: that is how an operator makes
the first admin key before a server requires one.
"""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from maas.cli.console import console
from maas.cli.options import JSON_OPTION, group
from maas.cli.render import print_json, when
from maas.cli.target import describe, open_target
from maas.errors import ForbiddenError, UnauthenticatedError

__all__ = ["app"]

_SCOPES_HELP = (
    "Scopes: admin may do everything, keys included; deploy uploads, configures, promotes "
    "and routes versions, and includes read; train submits and controls training jobs, and "
    "includes read; predict runs inference and reads the metadata clients need (model "
    "metadata, config, readiness); read reads every management record (models, versions, "
    "aliases, traffic, deployments, jobs, the audit log)."
)
_MODELS_HELP = (
    "A key limited with --model acts only on routes that name one of those models: "
    "anything about every model at once (such as listing them) is refused to it."
)

app = group(
    "Create, list and revoke API keys: who may call a server, and what they may do.\n\n"
    "A server on 127.0.0.1 answers without keys until the first one exists; from then on "
    "(and always on any other address) every request needs 'Authorization: Bearer "
    "<token>'. The CLI sends the key in MAAS_API_KEY (set it in the environment, never on "
    "the command line). Make the first admin key on the registry itself, where no key is "
    "needed: maas --local keys create admin --scope admin.\n\n"
    f"{_SCOPES_HELP}\n\n{_MODELS_HELP}"
)


def _models(models: tuple[str, ...] | None) -> str:
    return "every model" if models is None else ", ".join(models)


def _rate(rate_per_s: float | None) -> str:
    return "no limit" if rate_per_s is None else f"{rate_per_s:g}/s"


_CREATE_HELP = (
    "Create an API key NAME and print its token, this once: it will not be shown again.\n\n"
    "Use the token as MAAS_API_KEY for the CLI (export MAAS_API_KEY=<token>), as "
    "Client(url, api_key=<token>) in the SDK, or as the header 'Authorization: Bearer "
    "<token>'. With --local, or when no server answers, the key is made in the registry "
    "directly (no key needed: that is how the first admin key is made). Servers of the "
    "registry require a key on every request while any key exists (MAAS_AUTH=auto).\n\n"
    f"{_SCOPES_HELP}\n\n{_MODELS_HELP}"
)


@app.command("create", help=_CREATE_HELP)
def create(
    name: str = typer.Argument(
        ..., help="What the key is for, e.g. ci-deployer (letters, digits, '_', '.', '-')."
    ),
    scopes: list[str] = typer.Option(
        ...,
        "--scope",
        metavar="SCOPE",
        help="admin, deploy, train, predict or read; repeat for several.",
    ),
    models: list[str] = typer.Option(
        None,
        "--model",
        metavar="MODEL",
        help="Limit the key to this model; repeat for several (default: every model).",
    ),
    rate: float = typer.Option(
        None, "--rate", metavar="N", help="Requests a second the key may make (default: no limit)."
    ),
    as_json: bool = JSON_OPTION,
    quiet: bool = typer.Option(
        False,
        "--quiet",
        "-q",
        help="Print only the token (for scripts: T=$(maas keys create ...)).",
    ),
) -> None:
    """Create an API key and print its token, this once (its help: ``_CREATE_HELP``)."""
    with open_target() as target:
        try:
            first = not target.list_keys()
        except (ForbiddenError, UnauthenticatedError):
            first = False  # the create below is refused the same way, and audited
        created = target.create_key(name, scopes, models=models or None, rate_per_s=rate)
        where = describe(target)
    if as_json:
        print_json(created)
        return
    if quiet:
        console.print(created.token, markup=False, highlight=False, soft_wrap=True)
        return
    console.print(
        f"created API key [bold]{escape(created.name)}[/] (id {created.id}) on "
        f"{escape(where)}: scopes {', '.join(created.scopes)}; "
        f"{escape(_models(created.models))}; "
        + ("no rate limit" if created.rate_per_s is None else f"at most {created.rate_per_s:g}/s"),
        highlight=False,
        soft_wrap=True,
    )
    console.print()
    console.print(created.token, markup=False, highlight=False, soft_wrap=True)
    console.print()
    console.print(
        "This token is shown only now and will not be shown again: the registry keeps only "
        "a hash of it. If it is lost, revoke the key and create another.",
        highlight=False,
    )
    console.print("Use it from the CLI (it sends MAAS_API_KEY):", highlight=False)
    console.print(
        f"  export MAAS_API_KEY={created.token}", markup=False, highlight=False, soft_wrap=True
    )
    console.print(
        "or send it as the header 'Authorization: Bearer <token>' "
        "(the SDK: Client(url, api_key=token)).",
        markup=False,
        highlight=False,
    )
    if first:
        console.print(
            "[yellow]note:[/] this is the registry's first key: from now on its servers "
            "require a key on every request (unless started with --auth off); the server "
            "that made it at once, others within their refresh interval.",
            highlight=False,
        )


@app.command("list")
def list_keys(
    include_revoked: bool = typer.Option(False, "--revoked", help="Include revoked keys."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List API keys, oldest first: id, name, scopes, models, rate, who made them and
    when. Never their tokens: those were shown once, at creation."""
    with open_target() as target:
        found = target.list_keys(include_revoked=include_revoked)
    if as_json:
        print_json(found)
        return
    if not found:
        console.print("no API keys: servers of this registry on 127.0.0.1 need none")
        return
    table = Table(
        "id", "name", "scopes", "models", "rate", "created", "by", "revoked", title="keys"
    )
    for key in found:
        revoked = "-"
        if key.revoked_at is not None:
            revoked = f"{when(key.revoked_at)} by {key.revoked_by or '?'}"
        table.add_row(
            key.id,
            escape(key.name),
            ", ".join(key.scopes),
            escape(_models(key.models)),
            _rate(key.rate_per_s),
            when(key.created_at),
            escape(key.created_by),
            escape(revoked),
        )
    console.print(table)


@app.command("revoke")
def revoke(key_id: str = typer.Argument(..., help="The key's id (from maas keys list).")) -> None:
    """Revoke an API key for good: the server that revokes it refuses it at once, other
    servers of the registry at their next refresh. The key stays listed (--revoked)."""
    with open_target() as target:
        key = target.revoke_key(key_id)
        where = describe(target)
    console.print(
        f"revoked API key [bold]{escape(key.name)}[/] (id {key.id}) on {escape(where)}",
        highlight=False,
        soft_wrap=True,
    )
