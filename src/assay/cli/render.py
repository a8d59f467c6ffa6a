"""Rendering results for the terminal (rich) and for ``--json``."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from assay.audit.base import AuditReport

__all__ = ["SEVERITY_STYLE", "print_json", "render_audit"]

SEVERITY_STYLE = {"block": "bold red", "warn": "yellow", "info": "cyan"}

#: Below this terminal width the findings are listed one under another: five table columns
#: would squeeze the fix into a few characters.
TABLE_MIN_WIDTH = 120


def print_json(console: Console, payload: Any) -> None:
    """Print ``payload`` as JSON, unstyled, so it can be piped into jq."""
    console.print_json(json.dumps(payload, default=str), highlight=False) if console.is_terminal else print(
        json.dumps(payload, indent=2, default=str)
    )


def _list_findings(console: Console, report: AuditReport) -> None:
    """Each finding as a short block: severity, check and columns, then the finding and its fix."""
    for f in report.findings:
        head = Text()
        head.append(f.severity.upper(), style=SEVERITY_STYLE[f.severity])
        head.append(f"  {f.check}", style="bold")
        if f.columns:
            head.append(f"  ({', '.join(f.columns)})")
        console.print()
        console.print(head, soft_wrap=False)
        console.print(Text(f.message), soft_wrap=False)
        console.print(Text("fix: ", style="bold").append(f.fix), soft_wrap=False)
    console.print()


def render_audit(console: Console, report: AuditReport) -> None:
    """The audit as a table sorted by severity, with the fix for every finding."""
    console.print(
        f"[bold]Audit[/] of {report.source or 'data'}: {report.rows:,} rows x {report.columns} columns, "
        f"data version [dim]{report.data_version}[/]"
    )
    if report.findings and console.width < TABLE_MIN_WIDTH:
        _list_findings(console, report)
    elif report.findings:
        table = Table(show_lines=True, expand=True)
        table.add_column("severity", no_wrap=True)
        table.add_column("check", no_wrap=True)
        table.add_column("columns", overflow="fold", max_width=24)
        table.add_column("finding", ratio=3)
        table.add_column("fix", ratio=2)
        for f in report.findings:
            table.add_row(
                Text(f.severity, style=SEVERITY_STYLE[f.severity]),
                f.check,
                ", ".join(f.columns) or "-",
                f.message,
                f.fix,
            )
        console.print(table)
    counts = {s: sum(1 for f in report.findings if f.severity == s) for s in SEVERITY_STYLE}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    if report.passed:
        console.print(f"[green]Audit passed[/]: no blocking finding ({summary}).")
    else:
        names = ", ".join(sorted({f"{f.check} ({', '.join(f.columns)})" for f in report.blocking}))
        console.print(f"[bold red]Audit failed[/]: {counts['block']} blocking finding(s): {names}.")
