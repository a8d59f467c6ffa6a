"""The ``assay`` command line: thin commands over the library.

Each command parses its options, calls one library function and renders the
result as a rich table or, with ``--json``, as JSON. Exit codes: 0 success,
1 a gate or blocking finding failed, 2 unusable input (one line, no traceback).
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from assay.errors import AssayError, ConfigError
from assay.cli.common import (
    ConfigOpt,
    JsonOpt,
    out_console as _out,
    err_console as _err,
)

__all__ = ["app", "main"]

app = typer.Typer(
    name="assay",
    help="From a framed problem to a monitored production model, every step guarded.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # plain click-style help: flags read "--json", not "--json <bool>", and help needs no rich
    rich_markup_mode=None,
    context_settings={"help_option_names": ["--help", "-h"]},
)

_state: dict[str, bool] = {"debug": False}



def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("assay")
        except PackageNotFoundError:  # a source tree on sys.path, not installed
            number = "unknown (not installed)"
        _out().print(f"assay {number}")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", is_eager=True,
                     callback=_show_version),
    ] = False,
) -> None:
    _state["debug"] = debug


@app.command()
def init(
    data: Annotated[str, typer.Argument(help="CSV or Parquet file, or a SQLAlchemy URL with --query.", metavar="DATA")],
    target: Annotated[str, typer.Option("--target", "-t", help="The column to predict.")],
    task: Annotated[
        Optional[str],
        typer.Option(help="binary | multiclass | regression | text-classification (default: inferred)."),
    ] = None,
    time: Annotated[Optional[str], typer.Option("--time", help="Event-time column.")] = None,
    id_column: Annotated[Optional[str], typer.Option("--id", help="Row identifier column.")] = None,
    group: Annotated[Optional[str], typer.Option("--group", help="Group column (e.g. customer).")] = None,
    protected: Annotated[
        Optional[list[str]], typer.Option("--protected", "-p", help="Protected attribute (repeatable).")
    ] = None,
    query: Annotated[Optional[str], typer.Option(help="SQL query, when DATA is a database URL.")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write.")] = Path("assay.yaml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Profile the data and write a commented assay.yaml with sensible defaults."""
    from assay.config.draft import draft_spec, render_yaml
    from assay.config.load import load_spec
    from assay.data.dataset import load_dataset
    from assay.data.source import is_sql_url

    if task is not None and task not in ("binary", "multiclass", "regression", "text-classification"):
        raise ConfigError(
            f"unknown task '{task}'",
            key="--task",
            expected="binary, multiclass, regression or text-classification",
        )
    if output.exists() and not force:
        raise ConfigError(
            "already exists; refusing to overwrite it",
            where=str(output),
            fix="Pass --force to replace it, or -o to write elsewhere.",
        )
    base = output.resolve().parent
    dataset = load_dataset(data, query=query, parse_dates=[time] if time else None)
    if is_sql_url(data):
        source = data
    else:
        source = _relative(Path(data).resolve(), base)
    draft = draft_spec(
        dataset,
        source=source,
        target=target,
        task=task,
        time=time,
        id_column=id_column,
        group=group,
        protected=list(protected or []),
        query=query,
    )
    text = render_yaml(draft)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(output.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(output)
    spec = load_spec(output)
    console = _out()
    console.print(f"Wrote [bold]{output}[/]: task [bold]{spec.task}[/] ({draft.notes['task']}), "
                  f"primary metric [bold]{spec.primary_metric}[/], split [bold]{spec.split_strategy}[/].")
    console.print("Next: review it, then run [bold]assay audit[/].")


@app.command()
def audit(
    data: Annotated[Optional[str], typer.Argument(help="Audit this file instead of assay.yaml's data.", metavar="DATA")] = None,
    target: Annotated[Optional[str], typer.Option("--target", "-t", help="Target column (with DATA).")] = None,
    task: Annotated[Optional[str], typer.Option(help="Task (with DATA; default: inferred).")] = None,
    time: Annotated[Optional[str], typer.Option("--time", help="Time column (with DATA).")] = None,
    protected: Annotated[
        Optional[list[str]], typer.Option("--protected", "-p", help="Protected attribute (with DATA).")
    ] = None,
    accept: Annotated[
        Optional[list[str]],
        typer.Option("--accept", help="Go on despite this check's blocking findings (repeatable).",
                     metavar="CHECK"),
    ] = None,
    config: ConfigOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Audit the data: quality, duplicates, leakage, label errors, bias. Exit 1 if a finding blocks."""
    from assay.data_audit import audit_file, audit_project
    from assay.registry.registry import current_user

    progress = _progress()
    with progress:
        bar = progress.add_task("audit", total=None)

        def tick(name: str, i: int, n: int) -> None:
            progress.update(bar, total=n, completed=i, description=f"audit: {name}")

        if data is not None:
            if target is None:
                raise ConfigError(
                    "a target is needed to audit a file", key="--target", fix="Pass --target COLUMN."
                )
            report = audit_file(data, target=target, task=task, time=time,
                                protected=list(protected or []), progress=tick)
            report = report.accepting(accept or (), actor=current_user())
        else:
            report = audit_project(config, progress=tick, accept=accept or ())
        progress.update(bar, completed=progress.tasks[0].total or 0)
    console = _out()
    if json_out:
        from assay.cli.render import print_json

        print_json(console, report.to_dict())
    else:
        from assay.cli.render import render_audit

        render_audit(console, report)
    if not report.passed:
        raise typer.Exit(1)


@app.command()
def demo(
    directory: Annotated[
        Optional[Path], typer.Option("--dir", help="Project folder to create (default: a temporary one).")
    ] = None,
    rows: Annotated[
        int, typer.Option(help="Flights to sample (0 = all 327,346).", min=0)
    ] = 60_000,
    json_out: JsonOpt = False,
) -> None:
    """Run the lifecycle, as far as it is built, on real bundled data (NYC flights 2013)."""
    from assay.demo import run_demo

    console = _out()
    result = run_demo(directory, rows=rows or None, console=None if json_out else console)
    if json_out:
        from assay.cli.render import print_json

        print_json(console, result.to_dict())
    if not result.passed:
        failed = ", ".join(result.failed_steps) or "the loop did not reach its last step"
        _err().print(f"[bold red]The demo stopped short[/]: {escape(failed)} (the output above says "
                     "why).")
        raise typer.Exit(1)


from assay.cli.models import register_commands  # noqa: E402 - after the app exists

register_commands(app)

from assay.cli.serve import register_serve_commands  # noqa: E402

register_serve_commands(app)

from assay.cli.monitor import register_monitor_commands  # noqa: E402

register_monitor_commands(app)

from assay.cli.label import register_label_commands  # noqa: E402

register_label_commands(app)

from assay.cli.explain import register_explain_commands  # noqa: E402

register_explain_commands(app)


def _progress() -> Progress:
    err = _err()
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def _is_usage_error(exc: BaseException) -> bool:
    """Whether ``exc`` is click's ``ClickException`` (usage errors, bad parameters).

    Typer ships its own copy of click (``typer._click``), so ``click.ClickException`` from the
    separately installed click is not the class it raises; match the class by name instead.
    """
    return any(cls.__name__ == "ClickException" for cls in type(exc).__mro__) and hasattr(
        exc, "show"
    )


def main() -> None:
    """Console entry point: run the app and turn errors into one line and an exit code."""
    try:
        code = app(standalone_mode=False, prog_name="assay")
        sys.exit(code if isinstance(code, int) else 0)
    except AssayError as exc:
        if _state["debug"]:
            traceback.print_exc()
        _err().print(f"[bold red]error[/]: {escape(exc.render())}", highlight=False)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        _err().print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        _err().print("interrupted")
        sys.exit(130)
    except Exception as exc:  # click usage errors and genuine bugs
        if _is_usage_error(exc):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(int(getattr(exc, "exit_code", 2)))
        if _state["debug"]:
            traceback.print_exc()
        _err().print(
            f"[bold red]internal error[/]: {type(exc).__name__}: {escape(str(exc))} "
            "(run with --debug for the traceback and report it)"
        )
        sys.exit(3)
