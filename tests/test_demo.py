"""The demo runs every built stage on the bundled flights and leaves a usable project."""

from __future__ import annotations

import json
from pathlib import Path

from assay.demo import POST_OUTCOME_COLUMNS, run_demo
from assay.pipeline import open_registry
from assay.project import Project


def test_demo_catches_the_leak_trains_and_registers(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "demo", rows=3000)
    steps = {s.name: s for s in result.steps}
    assert list(steps)[:5] == ["data", "init", "audit (raw)", "reframe", "audit"]
    raw = json.loads(Path(steps["audit (raw)"].outputs["report"]).read_text())
    leaks = {c for f in raw["findings"] if f["severity"] == "block" for c in f["columns"]}
    assert leaks and leaks <= set(POST_OUTCOME_COLUMNS)
    assert steps["audit"].ok
    project = Project.open(tmp_path / "demo" / "assay.yaml")
    assert set(POST_OUTCOME_COLUMNS) <= set(project.spec.data.drop)
    registry = open_registry(project)
    assert [v.version for v in registry.list()] == [1, 2]
    assert Path(steps["run"].outputs["report"]).exists()
    assert registry.alias("champion") in (1, 2)
