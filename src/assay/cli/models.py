"""CLI commands over the lifecycle: run, models, evaluate, promote, rollback, history, report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from assay.cli.common import (
    ConfigOpt,
    JsonOpt,
    out_console as _out,
    err_console as _err,
    open_project as _open,
)

__all__ = ["register_commands"]



def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def run(
    accept: Annotated[
        Optional[list[str]],
        typer.Option("--accept", help="Go on despite this audit check's blocking findings "
                     "(repeatable; kept in the audit as accepted).", metavar="CHECK"),
    ] = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Audit, split, search, evaluate, register and gate: one new model version."""
    from assay.pipeline import StageEvent, run_project
    from assay.project import Project

    project = Project.open(config)
    err = _err()
    progress = Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[best]}"), TimeElapsedColumn(),
        console=err, transient=True, disable=not err.is_terminal,
    )
    planned = project.spec.search.trials

    with progress:
        bar = progress.add_task("run", total=None, best="")

        def listen(event: StageEvent) -> None:
            if event.trial is not None:
                info = event.trial
                best = "" if info.best_value is None else f"best {info.best_family} {info.best_value:.4g}"
                progress.update(bar, description="search", completed=info.done,
                                total=info.planned or planned, best=best)
            else:
                progress.update(bar, description=f"{event.stage}: {event.message}")
                if not err.is_terminal and not json_out:
                    err.print(f"[dim]{event.stage}[/]: {event.message}")

        result = run_project(project, listener=listen, accept=accept or ())
    console = _out()
    if json_out:
        from assay.cli.render import print_json

        print_json(console, result.to_dict())
    else:
        _render_run(console, result)
    if not result.promoted:
        raise typer.Exit(1)


def _render_run(console: Console, result: Any) -> None:
    console.print(
        f"[bold]Version {result.version}[/] registered: {result.family}, {result.primary} "
        f"validation {_fmt(result.validation_value)}, test {_fmt(result.test_value)} "
        f"(baseline {_fmt(result.baseline_value)})"
    )
    split = result.split
    sizes = split.get("sizes", {})
    console.print(
        f"Split {split.get('strategy')}: train {sizes.get('train')}, validation {sizes.get('validation')}, "
        f"test {sizes.get('test')}; {split.get('straddling_removed', 0)} straddling duplicates handled"
    )
    console.print(f"Sealed test set {result.test_fingerprint[:19]}: {result.test_uses} scoring(s) recorded")
    table = Table(title="Gates", expand=False)
    table.add_column("gate")
    table.add_column("verdict")
    table.add_column("evidence")
    for gate in result.gate.gates:
        table.add_row(gate.name, Text("pass" if gate.passed else "FAIL",
                                      style="green" if gate.passed else "bold red"), gate.message)
    console.print(table)
    _render_recalibration(console, result.recalibration)
    _render_mitigation(console, result.mitigation)
    for warning in result.warnings:
        console.print(f"[yellow]warning[/]: {warning}")
    if result.promoted:
        console.print(f"[green]Promoted[/]: version {result.version} is the champion.")
    elif result.gate.passed and result.review:
        champion = f"version {result.champion}" if result.champion else "none"
        console.print(
            f"[yellow]Registered, not promoted[/]: every gate passed, but {'; and '.join(result.review)}. "
            f"Champion unchanged ({champion}); to promote it: [bold]assay promote {result.version}[/]"
        )
    else:
        failed = ", ".join(g.name for g in result.gate.failed)
        champion = f"version {result.champion}" if result.champion else "none"
        console.print(f"[bold red]Not promoted[/]: failed gates: {failed}. Champion unchanged ({champion}).")
    if result.report:
        console.print(f"Report: {result.report}")


def _render_recalibration(console: Console, recal: Any) -> None:
    if recal is None:
        return
    if recal.adopted:
        console.print(
            f"Calibration: {recal.method} recalibration on the validation rows registered; ECE "
            f"validation {_fmt(recal.validation_before)} -> {_fmt(recal.validation_after)} "
            f"(out of fold), test {_fmt(recal.test_before)} -> {_fmt(recal.test_after)} "
            f"(limit {recal.max_ece:g})"
        )
    else:
        console.print(
            f"Calibration: model kept as fitted ({recal.note}); ECE validation "
            f"{_fmt(recal.validation_before)}, test {_fmt(recal.test_after)} (limit {recal.max_ece:g})"
        )


def _render_mitigation(console: Console, comparison: Any) -> None:
    if comparison is None:
        return
    console.print("Fairness mitigation ran: " + "; ".join(comparison.reasons))
    measures = sorted({m for model in comparison.models
                       for m, v in model.fairness.get(comparison.attribute, {}).items()
                       if v is not None})
    console.print(f"Mitigated alternatives on the {comparison.rows} rows "
                  f"({comparison.attribute}, {comparison.constraint}):")
    table = Table(expand=False)
    for header in ("method", comparison.primary, *measures, "limits"):
        table.add_column(header.replace("_", " "))
    for model in comparison.models:
        values = model.fairness.get(comparison.attribute, {})
        hold = "-" if model.limits_hold is None else ("hold" if model.limits_hold else "fail")
        table.add_row(model.method, _fmt(model.primary), *(_fmt(values.get(m)) for m in measures),
                      hold)
    console.print(table)
    for method, why in comparison.skipped.items():
        console.print(f"  {method}: not fitted: {why}")
    console.print(
        "The registered version is the unmitigated model: the alternatives above are "
        "compared, not registered, and no command registers one yet. The report holds "
        "this table; fairness.mitigation: off stops the comparison."
    )


def models(config: ConfigOpt = None, json_out: JsonOpt = False) -> None:
    """Registered versions, aliases and key metrics."""
    project, registry = _open(config)
    versions = registry.list()
    champion, challenger = registry.alias("champion"), registry.alias("challenger")
    rows: list[dict[str, Any]] = []
    for v in versions:
        primary = (v.metrics or {}).get("primary")
        test = (v.metrics or {}).get("test", {})
        alias = "champion" if v.version == champion else "challenger" if v.version == challenger else ""
        rows.append({"version": v.version, "family": v.family, "status": v.status, "alias": alias,
                     "primary": primary, "test": test.get(primary) if primary else None,
                     "created_at": v.created_at.isoformat(timespec="seconds"), "user": v.user,
                     "data_version": v.data_version})
    console = _out()
    if json_out:
        from assay.cli.render import print_json

        print_json(console, {"champion": champion, "challenger": challenger, "versions": rows})
        return
    if not rows:
        console.print("No model versions yet: run [bold]assay run[/].")
        return
    table = Table()
    for name in ("version", "family", "status", "alias", "metric", "test", "created", "by"):
        table.add_column(name)
    for r in rows:
        table.add_row(str(r["version"]), r["family"], r["status"], r["alias"], str(r["primary"]),
                      _fmt(r["test"]), r["created_at"], r["user"])
    console.print(table)


def evaluate_cmd(
    version: Annotated[int, typer.Argument(help="Model version.", metavar="VERSION")],
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The stored evaluation of a version on its sealed test set."""
    from assay.lifecycle import evaluation_of

    _, registry = _open(config)
    evaluation = evaluation_of(registry, version)
    console = _out()
    if json_out:
        from assay.cli.render import print_json

        print_json(console, evaluation.to_dict())
        return
    table = Table(title=f"Version {version}: {evaluation.n_rows} test rows")
    table.add_column("metric")
    table.add_column("value")
    table.add_column("95% interval")
    for name, value in evaluation.metrics.items():
        interval = evaluation.intervals.get(name)
        shown = f"[{interval[0]:.4g}, {interval[1]:.4g}]" if interval else "-"
        table.add_row(name + (" (primary)" if name == evaluation.primary else ""), _fmt(value), shown)
    console.print(table)
    decision = registry.latest_gate(version)
    criteria: list[Any] = next((g.get("evidence", {}).get("criteria", []) for g in (decision.gates if decision else [])
                     if g.get("name") == "acceptance"), [])
    if criteria:
        from assay.evaluate import Criterion
        from assay.gate import describe_criterion

        console.print("[bold]Acceptance[/] (point estimate, interval, and the value judged):")
        for raw in criteria:
            criterion = Criterion.from_dict(raw)
            verdict = "[green]holds[/]" if criterion.passed else "[bold red]fails[/]"
            console.print(f"  {verdict} {describe_criterion(criterion)}", highlight=False)


def promote(
    version: Annotated[int, typer.Argument(help="Model version.", metavar="VERSION")],
    reason: Annotated[Optional[str], typer.Option(help="Why (kept in the audit trail).")] = None,
    force: Annotated[bool, typer.Option(help="Promote despite failed gates (needs --reason).")] = False,
    config: ConfigOpt = None,
) -> None:
    """Make a version the champion, if its gates passed."""
    from assay.lifecycle import promote_version

    _, registry = _open(config)
    record = promote_version(registry, version, reason=reason, force=force)
    _out().print(f"Version {record.version} is the champion{' (forced)' if force else ''}.")


def rollback(
    reason: Annotated[Optional[str], typer.Option(help="Why (kept in the audit trail).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Put the previous champion back."""
    from assay.lifecycle import rollback_champion

    _, registry = _open(config)
    record = rollback_champion(registry, reason=reason)
    _out().print(f"Rolled back: version {record.version} is the champion again.")


def sign(
    version: Annotated[int, typer.Argument(help="Model version.")],
    reason: Annotated[Optional[str], typer.Option(help="Why (kept in the audit trail).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Sign a version's artifact with this machine's key, for a store from before signing.

    Only for files known to be the ones the project registered: a signature lets a
    pickle be loaded, and loading a pickle runs its code.
    """
    _, registry = _open(config)
    record = registry.sign(version, reason=reason or "")
    _out().print(f"Version {record.version} is signed with this machine's key.")


def history(
    limit: Annotated[int, typer.Option(help="Most recent events to show.")] = 50,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """The audit trail: who did what to which version, when and why."""
    _, registry = _open(config)
    events = registry.events(limit=limit)
    console = _out()
    if json_out:
        from assay.cli.render import print_json

        print_json(console, [e.to_dict() for e in events])
        return
    table = Table()
    for name in ("when", "who", "action", "version", "reason"):
        table.add_column(name)
    for e in events:
        table.add_row(e.at.isoformat(timespec="seconds"), e.actor, e.action, _fmt(e.version), e.reason or "")
    console.print(table)


def report(
    version: Annotated[int, typer.Argument(help="Model version.", metavar="VERSION")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="HTML file to write.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Write the self-contained HTML report (and model card) of a version."""
    from assay.lifecycle import write_version_report

    project, registry = _open(config)
    path = write_version_report(project, registry, version, output)
    _out().print(f"Wrote {path} and {path.with_suffix('.md')}")


def register_commands(app: typer.Typer) -> None:
    """Add the lifecycle commands to ``app``."""
    app.command("run")(run)
    app.command("models")(models)
    app.command("evaluate")(evaluate_cmd)
    app.command("promote")(promote)
    app.command("rollback")(rollback)
    app.command("sign")(sign)
    app.command("history")(history)
    app.command("report")(report)
