"""CLI command of the explain stage: ``assay explain VERSION ROWS [-o FILE]``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from assay.cli.common import ConfigOpt, JsonOpt, open_project, out_console

__all__ = ["explain", "register_explain_commands"]

#: contributions shown per row on the terminal (all of them go to -o FILE and --json)
SHOWN = 5


def explain(
    version: Annotated[int, typer.Argument(help="The model version to explain.", metavar="VERSION")],
    rows: Annotated[Path, typer.Argument(help="Records to explain: .parquet, .csv or .jsonl.",
                                         metavar="ROWS", show_default=False)],
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", help="Write per-row contributions here (.parquet, .csv or "
                     ".jsonl); default: print the largest ones."),
    ] = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Split each row's prediction into per-feature contributions (they add up, with the base
    value, to the model's output: log-odds, raw score or the predicted value)."""
    from assay.cli.render import print_json
    from assay.serve.explain_file import explain_file

    _, registry = open_project(config)
    try:
        result = explain_file(registry, version, rows, output)
    finally:
        registry.store.close()
    console = out_console()
    if json_out:
        print_json(console, result.to_dict())
        return
    if result.output is not None:
        console.print(f"Explained {result.count} rows with version {result.version} into "
                      f"{escape(result.output)} in {result.seconds:.1f} s.")
        return
    for i, row in enumerate(result.rows):
        e = row.explanation
        table = Table(title=f"row {i}: prediction {escape(str(row.prediction.prediction))}, "
                      f"{e.output_space} {e.output:.4g} = base {e.base_value:.4g} + contributions",
                      title_justify="left")
        table.add_column("feature")
        table.add_column("contribution", justify="right")
        ranked = sorted(e.contributions.items(), key=lambda item: -abs(item[1]))
        for feature, value in ranked[:SHOWN]:
            table.add_row(escape(feature), f"{value:+.4g}")
        if len(ranked) > SHOWN:
            rest = sum(v for _, v in ranked[SHOWN:])
            table.add_row(f"({len(ranked) - SHOWN} more)", f"{rest:+.4g}")
        console.print(table)


def register_explain_commands(app: typer.Typer) -> None:
    """Add ``explain`` to ``app``."""
    app.command("explain")(explain)
