"""``assay label queue`` and ``assay label plan``: what to label next, and how much more."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from assay.cli.common import ConfigOpt, JsonOpt
from assay.cli.common import open_project as _open
from assay.cli.common import out_console as _out

__all__ = ["register_queue_commands"]

#: queue rows shown in the terminal (the files hold all of them)
SHOWN = 15


def queue(
    budget: Annotated[int, typer.Option("--budget", "-n", help="How many rows to queue.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Label Studio tasks JSON file to write.")
    ],
    csv: Annotated[
        Optional[Path], typer.Option("--csv", help="Also write the queue as a CSV file.")
    ] = None,
    strategy: Annotated[
        str, typer.Option(help="Uncertainty: margin | least_confidence | entropy.")
    ] = "margin",
    diversity: Annotated[str, typer.Option(help="Diversity: kmeans | kcenter | none.")] = "kmeans",
    review: Annotated[
        Optional[Path],
        typer.Option("--review", help="Also list labelled rows whose label looks wrong (CSV)."),
    ] = None,
    version: Annotated[
        Optional[int], typer.Option("--version", help="Model version (default: the champion).")
    ] = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Rank the unlabelled rows by what the model would learn; write Label Studio tasks."""
    from assay.label.queue import DIVERSITIES, STRATEGIES
    from assay.label.tasks import write_csv, write_label_studio
    from assay.labelling import build_queue

    _check_choice("--strategy", strategy, STRATEGIES)
    _check_choice("--diversity", diversity, DIVERSITIES)
    project, registry = _open(config)
    for path in (output, csv, review):
        if path is not None:
            _refuse_data_file(path, project)
    result = build_queue(
        project, registry, budget, strategy=strategy,  # type: ignore[arg-type]
        diversity=diversity, review=review is not None, version=version,  # type: ignore[arg-type]
    )
    write_label_studio(output, result.tasks())
    if csv is not None:
        write_csv(csv, result.items)
    if review is not None and result.review is not None:
        write_csv(review, result.review)
    console = _out()
    if json_out:
        from assay.cli.render import print_json

        print_json(console, result.to_dict())
        return
    _render_queue(console, result, output, csv, review)


def _render_queue(
    console: Console, result: Any, output: Path, csv: Path | None, review: Path | None
) -> None:
    items = result.items
    console.print(
        f"Queued {len(items)} of {result.pool_rows} unlabelled rows with version "
        f"{result.version} ({result.strategy} uncertainty, {result.diversity} diversity)"
        + (f"; {result.test_rows_excluded} sealed test rows left out" if result.test_rows_excluded
           else "")
    )
    if result.floors:
        floors = ", ".join(f"{k}: {v}" for k, v in result.floors.items())
        console.print(f"Strata floors: {escape(floors)}")
    table = Table()
    for name in ("rank", result.id_column, "predicted", "uncertainty", "why"):
        table.add_column(name)
    for row in items.head(SHOWN).to_dict("records"):
        table.add_row(
            str(row["rank"]), escape(str(row[result.id_column])), escape(str(row["predicted"])),
            f"{row['uncertainty']:.3f}", escape(str(row["reason"])),
        )
    console.print(table)
    if len(items) > SHOWN:
        console.print(f"... and {len(items) - SHOWN} more in the files.")
    console.print(f"Label Studio tasks: {output}" + (f"; CSV: {csv}" if csv else ""))
    if review is not None and result.review is not None:
        console.print(
            f"Review: {len(result.review)} of {result.review_checked} labelled rows look "
            f"mislabelled (cleanlab estimates {result.review_estimated}); listed in {review}"
        )
    for warning in result.warnings:
        console.print(f"[yellow]warning[/]: {escape(warning)}")


def plan(
    seconds_per_label: Annotated[
        Optional[float],
        typer.Option("--seconds-per-label", help="Annotator time per label, for hours."),
    ] = None,
    source: Annotated[
        str, typer.Option(help="Learning curve: auto | refit | stored.")
    ] = "auto",
    version: Annotated[
        Optional[int], typer.Option("--version", help="Model version (default: the champion).")
    ] = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """How many more labels the primary metric needs to reach its acceptance threshold."""
    from assay.labelling import build_plan

    _check_choice("--source", source, ("auto", "refit", "stored"))
    project, registry = _open(config)
    result = build_plan(
        project, registry, version=version, source=source,  # type: ignore[arg-type]
        seconds_per_label=seconds_per_label,
    )
    console = _out()
    if json_out:
        from assay.cli.render import print_json

        print_json(console, result.to_dict())
        return
    _render_plan(console, result)


def _render_plan(console: Console, result: Any) -> None:
    p = result.plan
    points = ", ".join(f"{int(n):,}: {v:.4g}" for n, v in zip(p.sizes, p.scores))
    console.print(
        f"Version {result.version} ({result.family}), {p.metric} by training rows "
        f"({result.source} curve): {points}"
    )
    console.print(
        f"Fitted ceiling {p.asymptote:.4g}; acceptance {p.metric} {result.threshold}"
    )
    low, high = result.additional_interval
    span = f"{'?' if low is None else f'{low:,}'} to {'unbounded' if high is None else f'{high:,}'}"
    if p.status == "met":
        console.print(f"[green]Met[/]: {result.training_rows:,} training rows already reach it.")
    elif p.status == "unreachable":
        console.print("[bold red]Unreachable[/] by more labels of the same kind.")
    else:
        line = (
            f"About [bold]{result.additional_labels:,}[/] more labels (90% interval {span}): "
            f"{p.rows_needed:,} training rows, now {result.training_rows:,} of "
            f"{result.labelled_rows:,} labelled rows"
        )
        if result.hours is not None:
            h_low, h_high = result.hours_interval
            line += (
                f"; about {result.hours:g} annotator hours ({'?' if h_low is None else h_low} to "
                f"{'unbounded' if h_high is None else h_high}"
                + (f", at the {result.seconds_per_label:g} s per item the imported annotations "
                   "record)" if result.seconds_from == "annotations" else ")")
            )
        console.print(line)
    console.print(f"[yellow]note[/]: {escape(p.warning)}")


def _check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        from assay.errors import ConfigError

        raise ConfigError(
            f"unknown value '{value}'",
            key=option,
            expected=" | ".join(choices),
            received=value,
            fix=f"Choose one of {', '.join(choices)}.",
        )


def _refuse_data_file(path: Path, project: Any) -> None:
    """Never write a queue over the project's data or its framing document."""
    from assay.data.source import is_sql_url
    from assay.errors import ConfigError

    protected = [project.config_path]
    if not is_sql_url(project.spec.data.source):
        protected.append(project.root / project.spec.data.source)
    target = path.resolve()
    for kept in protected:
        if kept.exists() and target.exists() and target.samefile(kept):
            raise ConfigError(
                f"{path} is the project's {kept.name}; writing the queue there would replace it",
                key=str(path),
                fix="Write elsewhere, e.g. -o tasks.json.",
            )


def register_queue_commands(label_app: typer.Typer) -> None:
    """Add ``queue`` and ``plan`` to the ``label`` command group."""
    label_app.command("queue")(queue)
    label_app.command("plan")(plan)
