"""The demo runs every built stage on the bundled flights and leaves a usable project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assay.demo import POST_OUTCOME_COLUMNS, run_demo
from assay.pipeline import open_registry
from assay.project import Project
from assay.model.predictions import read_predictions


@pytest.mark.integration
def test_demo_runs_the_whole_loop(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "demo", rows=12_000)
    steps = {s.name: s for s in result.steps}
    assert list(steps)[:6] == ["data", "init", "audit (raw)", "reframe", "audit", "run"]
    raw = json.loads(Path(steps["audit (raw)"].outputs["report"]).read_text())
    leaks = {c for f in raw["findings"] if f["severity"] == "block" for c in f["columns"]}
    assert leaks and leaks <= set(POST_OUTCOME_COLUMNS)
    assert steps["audit"].ok and steps["run"].ok
    assert Path(steps["run"].outputs["report"]).exists()
    # the served traffic went over HTTP into the log, with labels
    assert steps["serve"].ok and steps["serve"].outputs["url"].startswith("http://127.0.0.1:")
    project = Project.open(tmp_path / "demo" / "assay.yaml")
    assert set(POST_OUTCOME_COLUMNS) <= set(project.spec.data.drop)
    store = open_registry(project).store
    logged = read_predictions(store)
    assert len(logged) >= 1600 and logged["label"].notna().sum() >= 1600
    # winter traffic drifts (months never seen in training) and is detected
    assert steps["monitor (winter traffic)"].ok
    assert "month" in steps["monitor (winter traffic)"].summary
    # the retrain ended in a decision, and the champion is whatever that decision left
    assert steps["retrain"].ok
    assert open_registry(project).alias("champion") is not None
    assert steps["rollback"].ok
    assert result.passed and result.to_dict()["passed"] is True


def test_a_demo_that_stops_short_does_not_pass() -> None:
    from assay.demo import DemoResult, DemoStep

    ran = (DemoStep("data", True, "", 0.0), DemoStep("run", False, "latency FAILED", 0.0),
           DemoStep("serve", False, "no champion to serve", 0.0))
    stopped = DemoResult("x", ran)
    assert not stopped.passed and stopped.failed_steps == ["run", "serve"]
    assert stopped.to_dict()["passed"] is False
    unfinished = DemoResult("x", (DemoStep("data", True, "", 0.0), DemoStep("run", True, "", 0.0)))
    assert not unfinished.passed  # every step passed, but the loop never reached the rollback
    done = DemoResult("x", (DemoStep("run", True, "", 0.0), DemoStep("rollback", True, "", 0.0)))
    assert done.passed
