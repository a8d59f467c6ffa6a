"""CLI commands of the labelling stage: ``assay label import|status``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from assay.cli.common import ConfigOpt, JsonOpt, out_console as _out

if TYPE_CHECKING:
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


def register_label_commands(app: typer.Typer) -> None:
    """Add ``assay label`` and its commands to ``app``."""
    label_app.command("import")(import_cmd)
    label_app.command("status")(status)
    app.add_typer(label_app, name="label")
