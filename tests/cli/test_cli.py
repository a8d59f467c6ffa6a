"""The CLI end to end: init, audit, exit codes, and one clear line for every bad input."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def project(tmp_path: Path, clean_frame: pd.DataFrame) -> Path:
    frame = clean_frame.copy()
    frame["gender"] = np.random.default_rng(0).choice(["f", "m"], len(frame))
    frame.to_csv(tmp_path / "data.csv", index=False)
    return tmp_path


def test_init_then_audit(cli, project: Path) -> None:
    result = cli("init", "data.csv", "--target", "target", "--protected", "gender", cwd=project)
    assert result.code == 0, result.err
    assert "task binary" in result.out
    assert (project / "assay.yaml").exists()
    again = cli("init", "data.csv", "--target", "target", cwd=project)
    assert again.code == 2 and "refusing to overwrite" in again.err and "--force" in again.err
    forced = cli("init", "data.csv", "--target", "target", "--force", cwd=project)
    assert forced.code == 0
    audited = cli("audit", "--json", cwd=project)
    assert audited.code == 0, audited.err
    payload = json.loads(audited.out)
    assert set(payload) >= {"data_version", "rows", "columns", "findings"}
    assert payload["rows"] == 2000 and payload["columns"] == 10
    assert not [f for f in payload["findings"] if f["severity"] in ("block", "warn")]
    table = cli("audit", cwd=project)
    assert table.code == 0 and "Audit passed" in table.out


def test_audit_of_a_file_without_a_project(cli, project: Path) -> None:
    result = cli("audit", "data.csv", "--target", "target", "--json", cwd=project)
    assert result.code == 0
    assert json.loads(result.out)["rows"] == 2000


def test_blocking_finding_exits_1(cli, project: Path, clean_frame: pd.DataFrame) -> None:
    frame = clean_frame.copy()
    frame["refund_issued"] = frame["target"]
    frame.to_csv(project / "leaky.csv", index=False)
    result = cli("audit", "leaky.csv", "--target", "target", cwd=project)
    assert result.code == 1
    assert "target_leakage" in result.out and "refund_issued" in result.out
    assert "Audit failed" in result.out


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


BAD_INPUTS = [
    ("missing file", None, ["audit", "nope.csv", "--target", "y"], "nope.csv: file not found"),
    ("empty file", ("e.csv", b""), ["audit", "e.csv", "--target", "y"], "file is empty"),
    ("binary file", ("b.csv", b"\x89PNG\r\n\x1a\n\x00\x00"), ["audit", "b.csv", "--target", "y"], "binary file"),
    ("ragged row", ("r.csv", b"x,y\n1,0\n2,1,3\n"), ["audit", "r.csv", "--target", "y"], "ragged row"),
    ("truncated csv", ("t.csv", b"x,z,y\n1,2,0\n3,4"), ["audit", "t.csv", "--target", "y"], "ragged row"),
    ("non utf-8", ("l.csv", b"x,y\ncaf\xe9,1\n"), ["audit", "l.csv", "--target", "y"], "not valid utf-8"),
    ("duplicate names", ("d.csv", b"x,x,y\n1,2,0\n"), ["audit", "d.csv", "--target", "y"], "duplicate column"),
    ("missing target", ("m.csv", b"x,z\n" + b"1,0\n2,1\n" * 10), ["audit", "m.csv", "--target", "y"],
     "column 'y' is not in"),
    ("constant target", ("c.csv", b"x,y\n" + b"1,0\n2,0\n" * 10), ["audit", "c.csv", "--target", "y"],
     "single value"),
    ("all-NaN target", ("n.csv", b"x,y\n" + b"1,\n2,\n" * 10), ["audit", "n.csv", "--target", "y"],
     "empty in every row"),
    ("single row", ("s.csv", b"x,y\n1,0\n"), ["audit", "s.csv", "--target", "y", "--task", "binary"],
     "1 row"),
    ("bad yaml", ("assay.yaml", b"task: binary\ndata:\n  source: d.csv\n   target: y\n"), ["audit"],
     "line 4, column 10: is not valid YAML"),
    ("unknown key", ("assay.yaml", b"task: binary\ndata: {source: d.csv, target: y}\nsplti: {}\n"),
     ["audit"], "splti: unknown key"),
    ("no config", None, ["audit"], "assay.yaml: file not found"),
    ("sql cannot connect", None, ["init", "sqlite:////no/such/dir/x.db", "--query", "SELECT 1", "--target", "y"],
     "cannot connect"),
    ("bad task option", ("ok.csv", b"x,y\n1,0\n2,1\n"), ["init", "ok.csv", "--target", "y", "--task", "clf"],
     "unknown task 'clf'"),
]


@pytest.mark.parametrize(("name", "file", "args", "match"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_exits_2_with_one_line(cli, tmp_path: Path, name, file, args, match) -> None:
    if file is not None:
        _write(tmp_path / file[0], file[1])
    result = cli(*args, cwd=tmp_path)
    assert result.code == 2, (result.out, result.err)
    assert match in result.err
    assert "Traceback" not in result.err + result.out
    assert len(result.err.strip().splitlines()) == 1, result.err


def test_a_real_process_prints_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "r.csv").write_bytes(b"x,y\n1,0\n2,1,3\n")
    proc = subprocess.run(
        [sys.executable, "-m", "assay", "audit", "r.csv", "--target", "y"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "ragged row" in proc.stderr and "Traceback" not in proc.stderr


def test_init_from_a_sql_query(cli, tmp_path: Path, clean_frame: pd.DataFrame) -> None:
    with sqlite3.connect(tmp_path / "d.db") as conn:
        clean_frame.to_sql("rows", conn, index=False)
    url = f"sqlite:///{tmp_path / 'd.db'}"
    result = cli("init", url, "--query", "SELECT * FROM rows", "--target", "target", cwd=tmp_path)
    assert result.code == 0, result.err
    audited = cli("audit", "--json", cwd=tmp_path)
    assert audited.code == 0, audited.err
    assert json.loads(audited.out)["rows"] == 2000


def _fast_project(root: Path, clean_frame: pd.DataFrame, **extra: object) -> None:
    import yaml

    clean_frame.head(600).to_csv(root / "data.csv", index=False)
    raw = {
        "task": "binary",
        "data": {"source": "data.csv", "target": "target"},
        "search": {"families": ["dummy", "linear"], "trials": 2, "cv_folds": 3},
        "serving": {"latency_p99_ms": 1000},
        "acceptance": {"roc_auc": ">= 0.6"},
        **extra,
    }
    (root / "assay.yaml").write_text(yaml.safe_dump(raw))


def test_run_models_evaluate_promote_rollback_history_report(cli, tmp_path: Path, clean_frame) -> None:
    _fast_project(tmp_path, clean_frame)
    first = cli("run", "--json", cwd=tmp_path)
    assert first.code == 0, first.err
    payload = json.loads(first.out)
    assert payload["version"] == 1 and payload["promoted"] is True
    second = cli("run", cwd=tmp_path)
    assert second.code == 1 and "Not promoted" in second.out and "Champion unchanged (version 1)" in second.out
    models = json.loads(cli("models", "--json", cwd=tmp_path).out)
    assert models["champion"] == 1 and [v["version"] for v in models["versions"]] == [1, 2]
    evaluation = json.loads(cli("evaluate", "2", "--json", cwd=tmp_path).out)
    assert evaluation["primary"] == "roc_auc" and 0.5 < evaluation["metrics"]["roc_auc"] <= 1
    refused = cli("promote", "2", cwd=tmp_path)
    assert refused.code == 1 and "failed gates: champion" in refused.err
    no_reason = cli("promote", "2", "--force", cwd=tmp_path)
    assert no_reason.code == 2 and "needs a reason" in no_reason.err
    forced = cli("promote", "2", "--force", "--reason", "A/B result", cwd=tmp_path)
    assert forced.code == 0 and "Version 2 is the champion" in forced.out
    back = cli("rollback", "--reason", "latency", cwd=tmp_path)
    assert back.code == 0 and "version 1 is the champion again" in back.out
    again = cli("rollback", cwd=tmp_path)
    assert again.code == 2 and "no previous champion" in again.err
    events = json.loads(cli("history", "--json", cwd=tmp_path).out)
    assert [e["action"] for e in events[:3]] == ["rollback", "promote", "override"]
    assert events[0]["reason"] == "latency"
    missing = cli("evaluate", "7", cwd=tmp_path)
    assert missing.code == 2 and "model version 7 does not exist" in missing.err
    missing = cli("promote", "7", "--reason", "x", cwd=tmp_path)
    assert missing.code == 2 and "does not exist" in missing.err
    out = tmp_path / "r.html"
    report = cli("report", "1", "-o", str(out), cwd=tmp_path)
    assert report.code == 0 and out.exists() and out.with_suffix(".md").exists()
    assert "roc_auc" in out.read_text()
    assert "What the model leans on" in out.read_text() and "Rank in v" not in out.read_text()
    # the second version's report sets its importance beside the first's
    report = cli("report", "2", "-o", str(out), cwd=tmp_path)
    assert report.code == 0 and "Rank in v1" in out.read_text()


def test_run_without_criteria_registers_and_promote_needs_no_force(cli, tmp_path: Path, clean_frame) -> None:
    _fast_project(tmp_path, clean_frame, acceptance={})
    first = cli("run", cwd=tmp_path)
    assert first.code == 1, first.err
    assert "Registered, not promoted" in first.out and "assay promote 1" in first.out
    assert "Champion unchanged (none)" in first.out
    nothing = cli("rollback", cwd=tmp_path)
    assert nothing.code == 2 and "assay promote N" in nothing.err
    promoted = cli("promote", "1", cwd=tmp_path)
    assert promoted.code == 0 and "Version 1 is the champion." in promoted.out


def test_evaluate_shows_the_point_the_interval_and_the_value_judged(cli, tmp_path: Path, clean_frame) -> None:
    _fast_project(tmp_path, clean_frame, acceptance={"roc_auc": ">= 0.6"})
    assert cli("run", cwd=tmp_path).code in (0, 1)
    shown = cli("evaluate", "1", cwd=tmp_path)
    assert shown.code == 0, shown.err
    assert "Acceptance" in shown.out and "95% CI [" in shown.out
    assert "lower bound" in shown.out and "judged" in shown.out and "needs >= 0.6" in shown.out


def test_run_with_zero_budget_is_a_config_error(cli, tmp_path: Path, clean_frame) -> None:
    _fast_project(tmp_path, clean_frame, search={"families": ["linear"], "trials": 0})
    result = cli("run", cwd=tmp_path)
    assert result.code == 2 and "search budget is zero" in result.err
    assert not (tmp_path / ".assay" / "assay.db").exists()
