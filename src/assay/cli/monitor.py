"""CLI commands over monitoring: monitor, retrain, watch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from assay.cli.common import (
    ConfigOpt,
    JsonOpt,
    out_console as _out,
)

__all__ = ["register_monitor_commands"]


_SEVERITY = {"critical": "bold red", "warning": "yellow"}


def _print_json(payload: Any) -> None:
    from assay.cli.render import print_json

    print_json(_out(), payload)


def _fmt(value: Any, spec: str = ".4g") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def monitor(
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
    current: Annotated[
        Optional[Path],
        typer.Option("--current", help="A CSV/Parquet file to check instead of the logged traffic "
                     "(with the target column, live metrics are computed too)."),
    ] = None,
    window: Annotated[
        Optional[str],
        typer.Option("--window", help="Predictions (e.g. 1000) or a duration (e.g. 1d) to read; "
                     "default from monitoring in assay.yaml."),
    ] = None,
) -> None:
    """Drift and live performance of the champion over recent traffic; alerts. Exits 1 on alerts."""
    from assay.monitor.monitor import monitor_project
    from assay.project import Project

    project = Project.open(config)
    frame = None
    if current is not None:
        from assay.data.dataset import load_dataset

        time = project.spec.data.time
        frame = load_dataset(current, parse_dates=[time] if time else None).frame
    size: int | str | None = int(window) if window is not None and window.isdigit() else window
    report = monitor_project(project, current=frame, window=size)
    if json_out:
        _print_json(report.to_dict())
    else:
        render_monitor(_out(), report)
    if not report.healthy:
        raise typer.Exit(1)


def render_monitor(console: Console, report: Any) -> None:
    """A monitoring report for the terminal: window, drift table, live metrics, alerts."""
    window = report.window
    if window.get("kind") == "file":
        where = f"a file of {window.get('rows')} rows"
    elif window.get("kind") == "span":
        where = f"the last {window.get('span')}"
    else:
        where = f"the last {window.get('size')} predictions"
    console.print(
        f"[bold]Monitoring[/] model v{report.version} over {where}: {report.n_rows} rows; "
        f"verdict [bold]{report.verdict}[/]"
    )
    drift = report.drift
    if drift.checked:
        table = Table(title="Drift against the training data", expand=False)
        for name in ("column", "PSI", "JS", "test", "p", "severity", "drifted"):
            table.add_column(name)
        for col in sorted(drift.columns, key=lambda c: -c.psi)[:15]:
            table.add_row(
                escape(col.name), _fmt(col.psi, ".3f"), _fmt(col.js, ".3f"), col.test,
                _fmt(col.p_value, ".2g"), col.severity,
                Text("yes", style="bold red") if col.drifted else Text("no"),
            )
        console.print(table)
    else:
        console.print(f"Drift: {escape(drift.note)}")
    console.print(f"Live performance: {escape(report.performance.message)}")
    render_contract(console, report.contract)
    render_attribution(console, report.attribution)
    flagged = report.flagged
    named = flagged.by_field or flagged.by_code
    console.print(f"Flagged inputs: {flagged.share:.1%} of {flagged.n_rows}"
                  + (f" ({escape(', '.join(f'{k} {v:.1%}' for k, v in named.items()))})"
                     if named else ""))
    for note in report.notes:
        console.print(f"[yellow]note[/]: {escape(note)}")
    render_alerts(console, report.alerts)


_STATUS = {"met": "green", "inconclusive": "yellow", "breach": "bold red", "not_judged": "dim"}


def render_contract(console: Console, contract: Any) -> None:
    """The contract judged on live traffic: one row per criterion, its value, interval and verdict."""
    if not contract.checks:
        return
    table = Table(title="The contract on live traffic", expand=False)
    for name in ("criterion", "live", "95% interval", "n", "verdict", "note"):
        table.add_column(name)
    for check in contract.checks:
        interval = (f"{check.interval[0]:.4g} .. {check.interval[1]:.4g}"
                    if check.interval is not None else "-")
        table.add_row(
            escape(check.label), _fmt(check.observed, ".4g"), interval, str(check.n),
            Text(check.status, style=_STATUS.get(check.status, "")), escape(check.note),
        )
    console.print(table)


def render_attribution(console: Console, attribution: Any) -> None:
    """Each input column's share of the mean |attribution| at training and on the window."""
    if not attribution.judged:
        console.print(f"Attribution drift: not judged ({escape(attribution.reason)})")
        return
    table = Table(
        title=f"Attributions against training ({attribution.method}, {attribution.n_rows} rows; "
        f"attribution_shift {attribution.threshold:g})",
        expand=False,
    )
    for name in ("column", "train share", "train rank", "live share", "live rank", "shift", "drifted"):
        table.add_column(name)
    moved = {f.feature for f in attribution.drifted}
    for item in attribution.features[:15]:
        table.add_row(
            escape(item.feature), f"{item.reference_share:.1%}", str(item.reference_rank),
            f"{item.live_share:.1%}", str(item.live_rank), f"{item.shift:+.1%}",
            Text("yes", style="bold red") if item.feature in moved else Text("no"),
        )
    console.print(table)


def render_alerts(console: Console, outcome: Any) -> None:
    """New, still-open and resolved alerts, one line each."""
    for alert in outcome.raised:
        style = _SEVERITY.get(alert.severity, "yellow")
        sent = "" if alert.delivered else f" [dim](not sent: {escape(alert.delivery_error or '')})[/]"
        console.print(f"[{style}]ALERT {alert.id} {alert.kind}[/]: {escape(alert.message)}{sent}")
    for alert in outcome.suppressed:
        console.print(f"[dim]open alert {alert.id} {alert.kind} (since "
                      f"{alert.at.isoformat(timespec='seconds')}): {escape(alert.message)}[/]")
    for alert in outcome.resolved:
        console.print(f"[green]resolved[/] alert {alert.id} {alert.kind}")
    if not (outcome.raised or outcome.suppressed):
        console.print("[green]No alert.[/]")


def retrain(
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit trail).")] = "manual",
) -> None:
    """Retrain on recent labelled traffic, shadow the candidate, promote or reject it.

    Run it again to continue a retrain whose candidate is shadowing. Exits 1 when the
    candidate is rejected or the refreshed data fails its audit."""
    from assay.monitor.retrain import retrain_project
    from assay.project import Project

    result = retrain_project(Project.open(config), reason=reason)
    if json_out:
        _print_json(result.to_dict())
    else:
        render_retrain(_out(), result)
    if result.status in ("rejected", "blocked", "failed"):
        raise typer.Exit(1)


def render_retrain(console: Console, result: Any) -> None:
    """A retrain result for the terminal."""
    style = {"promoted": "green", "shadowing": "cyan", "skipped": "dim"}.get(result.status, "bold red")
    if result.abandoned:
        console.print(f"[yellow]An interrupted retrain ({result.abandoned}) was abandoned first.[/]")
    console.print(f"Retrain {result.retrain_id} ({escape(result.reason)}): "
                  f"[{style}]{result.status}[/]: {escape(result.message)}")
    data = result.data
    if data:
        console.print(
            f"Data: {data.get('original_rows')} original rows + {data.get('traffic_rows')} labelled "
            f"logged rows ({data.get('duplicates_removed', 0)} duplicates dropped, "
            f"{data.get('excluded_feedback_loop', 0)} labels excluded as copies of the model's "
            f"predictions)"
        )
    if result.gates:
        table = Table(title="Gates", expand=False)
        table.add_column("gate")
        table.add_column("verdict")
        table.add_column("evidence")
        for gate in result.gates:
            ok = bool(gate.get("passed"))
            table.add_row(gate.get("name", "?"),
                          Text("pass" if ok else "FAIL", style="green" if ok else "bold red"),
                          escape(str(gate.get("message", ""))))
        console.print(table)


def watch(
    config: ConfigOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print each iteration as one JSON line.")] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between iterations.")] = 60.0,
    once: Annotated[bool, typer.Option("--once", help="Run one iteration and exit.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for another watcher to stop instead "
                                       "of exiting.")] = False,
) -> None:
    """Loop: monitor -> alert -> retrain (per retrain.policy) -> shadow -> promote or reject."""
    from assay.monitor.watch import watch_project
    from assay.project import Project

    project = Project.open(config)
    console = _out()

    def show(iteration: Any) -> None:
        if json_out:
            print(json.dumps(iteration.to_dict(), default=str), flush=True)
            return
        stamp = iteration.at.isoformat(timespec="seconds")
        if iteration.monitor is not None:
            report = iteration.monitor
            console.print(f"[dim]{stamp}[/] v{report.version}: {report.n_rows} rows, "
                          f"verdict [bold]{report.verdict}[/]")
            render_alerts(console, report.alerts)
        if iteration.retrain is not None:
            render_retrain(console, iteration.retrain)
        if iteration.error:
            console.print(f"[dim]{stamp}[/] [bold red]error[/]: {escape(iteration.error)}")

    if not json_out:
        policy = project.spec.retrain.policy
        console.print(f"Watching {project.root} every {interval:g}s (retrain policy: {policy}); "
                      "Ctrl-C to stop.")
    try:
        done = watch_project(project, interval=interval, once=once, on_iteration=show,
                             lock_wait=None if wait else 0.0)
    except KeyboardInterrupt:
        console.print("stopped")
        return
    if once and done and done[-1].error:
        raise typer.Exit(1)


def register_monitor_commands(app: typer.Typer) -> None:
    """Add the monitoring commands to ``app``."""
    app.command("monitor")(monitor)
    app.command("retrain")(retrain)
    app.command("watch")(watch)
