"""The CLI's own front door: usage errors, --version, help, and read-only commands that start fast."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from assay.audit.base import AuditReport, Finding
from assay.cli.render import render_audit


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["models", "--bogus"], "No such option: --bogus"),
        (["evaluate"], "Missing argument 'VERSION'"),
        (["bogus"], "No such command 'bogus'"),
        (["demo", "--rows", "many"], "Invalid value for '--rows'"),
        (["models", "--json", "yes"], "unexpected extra argument"),
    ],
)
def test_usage_errors_exit_2_with_clicks_message(cli, tmp_path: Path, args: list[str], words: str) -> None:
    result = cli(*args, cwd=tmp_path)
    assert result.code == 2, result.err
    assert words in result.err
    assert "Usage: assay" in result.err and "--help" in result.err
    assert "internal error" not in result.err and "Traceback" not in result.err


def test_version(cli, tmp_path: Path) -> None:
    from importlib.metadata import version

    result = cli("--version", cwd=tmp_path)
    assert result.code == 0
    assert result.out.strip() == f"assay {version('assay')}"


def test_help_shows_flags_without_a_value(cli, tmp_path: Path) -> None:
    result = cli("models", "--help", cwd=tmp_path)
    assert result.code == 0
    assert "--json" in result.out and "Print the result as JSON." in result.out
    assert "<bool>" not in result.out
    top = cli("--help", cwd=tmp_path)
    assert top.code == 0 and "--version" in top.out and "models" in top.out
    short = cli("models", "-h", cwd=tmp_path)
    assert short.code == 0 and short.out == result.out


_HEAVY = ("pandas", "numpy", "sklearn", "scipy", "lightgbm", "torch", "optuna", "matplotlib",
          "alembic")


@pytest.mark.parametrize("command", [["models"], ["history"], ["token", "list"], ["--help"]])
def test_read_only_commands_do_not_load_the_training_stack(
    tmp_path: Path, clean_frame: pd.DataFrame, command: list[str]
) -> None:
    """`assay models`, `history` and `token list` answer without pandas, scikit-learn or Alembic."""
    clean_frame.to_csv(tmp_path / "data.csv", index=False)
    prepare = subprocess.run(
        [sys.executable, "-m", "assay", "init", "data.csv", "--target", "target"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )
    assert prepare.returncode == 0, prepare.stderr
    # the first open creates the store (Alembic runs once); the command under test reads it
    subprocess.run([sys.executable, "-m", "assay", "models"], cwd=tmp_path, check=True,
                   capture_output=True)
    probe = (
        "import sys\n"
        f"sys.argv = ['assay', *{command!r}]\n"
        "from assay.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
        f"print('LOADED', sorted(m for m in {_HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "LOADED []" in done.stderr, done.stderr


def test_audit_findings_stay_readable_in_80_columns() -> None:
    fix = ("Drop it (add it to data.drop in assay.yaml) if it is only known after the outcome; "
           "otherwise confirm it is available at prediction time.")
    report = AuditReport(
        source="data.csv", rows=100, columns=3, data_version="sha256:0",
        findings=(Finding(check="target_leakage", severity="block", columns=("refund_issued",),
                          message="feature 'refund_issued' alone predicts the target", fix=fix,
                          evidence={}),),
    )
    console = Console(width=80, record=True, force_terminal=False)
    render_audit(console, report)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    flat = " ".join(text.split())
    assert f"fix: {fix}" in flat
    assert "target_leakage" in flat and "refund_issued" in flat
    wide = Console(width=160, record=True, force_terminal=False)
    render_audit(wide, report)
    assert "Drop it" in wide.export_text()
    assert json.dumps(report.to_dict())  # the JSON form is unchanged by the layout
