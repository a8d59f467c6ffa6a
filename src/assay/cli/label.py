"""CLI commands of the labelling stage: ``assay label import|status``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from assay.cli.common import ConfigOpt, JsonOpt, out_console as _out
from assay.cli.label_queue import register_queue_commands

if TYPE_CHECKING:
    from assay.label.agreement import AgreementReport
    from assay.label.intake import ImportReport, LabelStatus

__all__ = ["label_app", "register_label_commands"]

label_app = typer.Typer(
    name="label",
    help="Annotations from several annotators: import them, see where labelling stands.",
    no_args_is_help=True,
    add_completion=False,
)

#: held-out items listed on the terminal (``--json`` lists all)
SHOWN_HELD_OUT = 20


def _print_json(value: Any) -> None:
    from assay.cli.render import print_json

    print_json(_out(), value)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _listing(items: tuple[str, ...], limit: int = SHOWN_HELD_OUT) -> str:
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown}, ... ({len(items)} in all)"


def import_cmd(
    files: Annotated[
        list[Path],
        typer.Argument(help="Label Studio JSON exports or long tables (CSV, Parquet).",
                       metavar="FILE"),
    ],
    file_format: Annotated[
        str,
        typer.Option("--format", help="auto (by suffix) | table | label-studio."),
    ] = "auto",
    item: Annotated[
        Optional[str],
        typer.Option("--item", help="Item id column (table; default item_id), or the key in a "
                     "Label Studio task's data (default: data.id, else the task id)."),
    ] = None,
    annotator: Annotated[
        str, typer.Option("--annotator", help="Annotator column of a table.")
    ] = "annotator",
    label: Annotated[
        Optional[str],
        typer.Option("--label", help="Label column (table; default label), or the Label Studio "
                     "control whose choice is the label."),
    ] = None,
    time: Annotated[
        str, typer.Option("--time", help="Column of seconds spent per judgement (table).")
    ] = "time_spent",
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Import annotation files and record the new label version.

    All files or nothing: one unusable file stores none. A file imported before is left alone.
    """
    from assay.label.importing import ColumnNames
    from assay.label.intake import import_annotations
    from assay.project import Project

    project = Project.open(config)
    columns = ColumnNames(item=item, annotator=annotator, label=label, time=time)
    report = import_annotations(project, files, file_format=file_format, columns=columns)
    if json_out:
        _print_json(report.to_dict())
        return
    _render_import(report)


def _render_import(report: ImportReport) -> None:
    console = _out()
    for f in report.files:
        name = escape(f.file_name)
        if f.already:
            console.print(f"{name}: already imported (import {f.import_id}); nothing changed.")
            continue
        skipped = ""
        if f.skipped:
            reasons = ", ".join(f"{n} {why}" for why, n in sorted(f.skipped.items()))
            skipped = f", {f.n_skipped} skipped ({reasons})"
        console.print(
            f"Imported [bold]{name}[/] ({f.format}): {_plural(f.n_labels, 'label')} from "
            f"{_plural(len(f.annotators), 'annotator')}{skipped}."
        )
    version = report.label_version
    if version is None:
        return
    console.print(
        f"Label version [bold]{version.id}[/] ({version.method}, min confidence "
        f"{version.min_confidence:g}): {_plural(version.n_confident, 'item')} with a confident "
        f"label, {version.n_held_out:,} held out for adjudication."
    )
    merge = report.merge
    if merge is not None:
        console.print(
            f"Data version [bold]{report.data_version}[/] (was {report.previous_data_version}): "
            f"{merge.labelled:,} rows newly labelled, {merge.relabelled:,} relabelled, "
            f"{merge.confirmed:,} confirmed."
        )
        if merge.held_out:
            console.print(f"Held out for adjudication: {escape(_listing(merge.held_out))}")
        if merge.kept_source:
            console.print(
                f"Kept their label from the data (annotators unsure): "
                f"{escape(_listing(merge.kept_source))}"
            )
        if merge.unknown_items:
            console.print(f"[yellow]{merge.unknown_items:,} labelled items are no longer rows "
                          "of the data.[/]")


def status(config: ConfigOpt = None, json_out: JsonOpt = False) -> None:
    """Imports, the label version and the items to adjudicate."""
    from assay.label.intake import label_status
    from assay.project import Project

    result = label_status(Project.open(config))
    if json_out:
        _print_json(result.to_dict())
        return
    _render_status(result)


def _render_status(result: LabelStatus) -> None:
    console = _out()
    if not result.imports:
        console.print("No annotations imported yet: run [bold]assay label import FILE[/].")
        return
    table = Table(title="Imports")
    for name in ("id", "file", "format", "labels", "skipped", "who", "when"):
        table.add_column(name)
    for i in result.imports:
        table.add_row(str(i.id), escape(i.file_name), i.format, f"{i.n_labels:,}",
                      f"{i.n_skipped:,}", escape(i.actor), i.at.isoformat(timespec="seconds"))
    console.print(table)
    console.print(
        f"{_plural(result.judgements, 'judgement')} of {_plural(result.items, 'item')} by "
        f"{_plural(len(result.annotators), 'annotator')}: "
        f"{escape(', '.join(result.annotators[:20]))}"
        + (" ..." if len(result.annotators) > 20 else "")
    )
    version = result.label_version
    if version is not None:
        console.print(
            f"Label version [bold]{version.id}[/] ({version.method}, min confidence "
            f"{version.min_confidence:g}): {_plural(version.n_confident, 'item')} labelled, "
            f"{version.n_held_out:,} held out for adjudication."
        )
    if result.held_out:
        held = Table(title="Held out for adjudication (least sure first)")
        for name in ("item", "best guess", "confidence", "judgements"):
            held.add_column(name)
        for h in result.held_out[:SHOWN_HELD_OUT]:
            held.add_row(escape(h.item_id), escape(h.label), f"{h.confidence:.2f}",
                         str(h.n_annotations))
        console.print(held)
        if len(result.held_out) > SHOWN_HELD_OUT:
            console.print(f"... {len(result.held_out) - SHOWN_HELD_OUT} more (--json lists all).")


def agreement(
    boot: Annotated[int, typer.Option("--boot", help="Bootstrap resamples for the intervals.",
                                      min=50)] = 1000,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """How far the annotators agree: kappas, Krippendorff's alpha, who and what disagree.

    Exit 1 when Krippendorff's alpha is below labelling.min_agreement.
    """
    from assay.label.intake import label_agreement
    from assay.project import Project

    project = Project.open(config)
    report = label_agreement(project, n_boot=boot)
    minimum = project.spec.labelling.min_agreement
    if report is None:
        if json_out:
            _print_json(None)
        else:
            _out().print("No annotations imported yet: run [bold]assay label import FILE[/].")
        return
    if json_out:
        _print_json({**report.to_dict(), "min_agreement": minimum,
                     "passed": report.passed(minimum)})
    else:
        _render_agreement(report, minimum)
    if not report.passed(minimum):
        raise typer.Exit(1)


def _interval(low: float, high: float) -> str:
    return "" if low != low or high != high else f" [{low:.3f}, {high:.3f}]"


def _render_agreement(report: AgreementReport, minimum: float) -> None:
    console = _out()
    alpha = report.krippendorff
    level = "ordinal" if report.ordered else "nominal"
    verdict = (
        f"[green]meets labelling.min_agreement {minimum:g}[/]"
        if report.passed(minimum)
        else f"[red]below labelling.min_agreement {minimum:g}[/]"
    )
    console.print(
        f"{_plural(report.n_annotations, 'judgement')} of {_plural(report.n_items, 'item')} by "
        f"{_plural(report.n_annotators, 'annotator')}; classes {escape(', '.join(report.classes))}"
    )
    console.print(
        f"Krippendorff's alpha ({level}): [bold]{alpha.value:.3f}[/]"
        f"{_interval(alpha.low, alpha.high)} on {alpha.n_items:,} items: {verdict}"
    )
    fleiss = report.fleiss
    console.print(
        f"Fleiss' kappa: {fleiss.value:.3f}{_interval(fleiss.low, fleiss.high)} on "
        f"{fleiss.n_items:,} items with {report.fleiss_raters} judgements each"
    )
    pairs = Table(title="Cohen's kappa per pair of annotators" + (" (quadratic weights)"
                                                                   if report.ordered else ""))
    for name in ("annotator", "annotator", "items", "kappa"):
        pairs.add_column(name)
    for pair in report.pairs[:30]:
        k = pair.kappa
        pairs.add_row(escape(pair.annotator_a), escape(pair.annotator_b), f"{k.n_items:,}",
                      f"{k.value:.3f}{_interval(k.low, k.high)}")
    console.print(pairs)
    classes = Table(title="Agreement per class (proportion of specific agreement)")
    for name in ("class", "judgements", "agreement"):
        classes.add_column(name)
    for c in report.per_class:
        classes.add_row(escape(c.label), f"{c.n_judgements:,}", f"{c.specific_agreement:.3f}")
    console.print(classes)
    outliers = {o.annotator for o in report.outliers}
    people = Table(title=f"Each annotator against the consensus ({report.consensus_method}"
                   + (", leaving their own vote out)" if report.leave_one_out else ")"))
    for name in ("annotator", "items", "accuracy", "kappa", ""):
        people.add_column(name)
    for a in report.annotators:
        flag = "[red]far below the others[/]" if a.annotator in outliers else ""
        people.add_row(escape(a.annotator), f"{a.n_items:,}", f"{a.accuracy:.3f}",
                       f"{a.kappa:.3f}", flag)
    console.print(people)
    for o in report.outliers:
        console.print(f"[yellow]{escape(o.annotator)}[/]: {escape(o.evidence)}")
    if report.disputed:
        disputed = Table(title="Most disputed items")
        for name in ("item", "votes", "consensus"):
            disputed.add_column(name)
        for d in report.disputed[:10]:
            votes = ", ".join(f"{label} x{n}" for label, n in sorted(d.votes.items()))
            disputed.add_row(escape(d.item_id), escape(votes), escape(d.consensus or ""))
        console.print(disputed)
    for note in report.notes:
        console.print(f"[dim]{escape(note)}[/]")


def register_label_commands(app: typer.Typer) -> None:
    """Add ``assay label`` and its commands to ``app``."""
    label_app.command("import")(import_cmd)
    label_app.command("status")(status)
    label_app.command("agreement")(agreement)
    register_queue_commands(label_app)
    app.add_typer(label_app, name="label")
