"""``maas alerts``: what a server's alert rules see now (docs/monitoring.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from maas.cli.console import console
from maas.cli.options import JSON_OPTION
from maas.cli.render import print_json, when
from maas.cli.target import open_server

if TYPE_CHECKING:
    from maas.client import Alert

__all__ = ["alerts"]


def _value(alert: Alert) -> str:
    return "-" if alert.value is None else f"{alert.value:.4g}"


def alerts(as_json: bool = JSON_OPTION) -> None:
    """Alerts firing and pending now, those resolved lately, and the rules loaded
    (the server's MAAS_ALERT_RULES file)."""
    with open_server() as target:
        report = target.alerts()
    if as_json:
        print_json(report)
        return
    if not report.rules:
        console.print("no alert rules loaded (set MAAS_ALERT_RULES to a rules file)")
        return
    if report.current:
        table = Table("state", "rule", "model", "version", "value", "threshold", "since")
        for a in report.current:
            state = "[red]firing[/]" if a.state == "firing" else "[yellow]pending[/]"
            table.add_row(
                state,
                a.rule,
                escape(a.model),
                a.version,
                _value(a),
                f"{a.threshold:g}",
                when(a.since),
            )
        console.print(table)
    else:
        console.print("no alerts firing or pending")
    if report.recent:
        table = Table("rule", "model", "version", "since", "resolved", title="recently resolved")
        for a in report.recent:
            table.add_row(a.rule, escape(a.model), a.version, when(a.since), when(a.resolved_at))
        console.print(table)
    evaluated = "not yet evaluated" if report.evaluated_at is None else when(report.evaluated_at)
    sent, failed = report.notifications.get("sent", 0), report.notifications.get("failed", 0)
    console.print(
        f"{len(report.rules)} rules, evaluated every {report.interval_s:g} s "
        f"(last: {evaluated}); notifications sent {sent}, failed {failed}",
        highlight=False,
    )
