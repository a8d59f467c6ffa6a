"""`assay run` and the gates that decide with evidence: a champion scored on its own
columns after a column is dropped, a champion that cannot be scored, no criteria."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from assay.errors import NotFoundError
from assay.lifecycle import promote_version, rollback_champion
from assay.pipeline import open_registry, run_project
from assay.project import Project


def _frame(n: int = 800, seed: int = 0) -> pd.DataFrame:
    """A linear part a linear model learns and an interaction only trees learn; ``legacy`` is noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    signal = np.where((X[:, 1] > 0) ^ (X[:, 2] > 0), 1.5, -1.5) + 2.0 * X[:, 0]
    frame = pd.DataFrame(X, columns=["x0", "x1", "x2", "x3"])
    frame["legacy"] = rng.normal(size=n)
    frame["y"] = (signal + rng.normal(scale=0.7, size=n) > 0).astype(int)
    return frame


def _project(root: Path, frame: pd.DataFrame | None = None, **overrides: Any) -> Project:
    if frame is not None:
        frame.to_csv(root / "data.csv", index=False)
    raw: dict[str, Any] = {
        "task": "binary",
        "data": {"source": "data.csv", "target": "y"},
        "search": {"families": ["linear"], "trials": 2, "cv_folds": 2},
        "serving": {"latency_p99_ms": 1000},
        "acceptance": {"roc_auc": ">= 0.55"},
        **overrides,
    }
    (root / "assay.yaml").write_text(yaml.safe_dump(raw))
    return Project.open(root / "assay.yaml")


def test_dropping_a_column_the_champion_used_still_compares_and_promotes(tmp_path: Path) -> None:
    first = run_project(_project(tmp_path, _frame()), write_report=False)
    assert first.promoted
    registry = open_registry(Project.open(tmp_path / "assay.yaml"))
    assert "legacy" in registry.get(1).lineage.features
    # the user drops the column; the data still holds it, so the champion is scored on it
    dropped = _project(
        tmp_path, data={"source": "data.csv", "target": "y", "drop": ["legacy"]},
        search={"families": ["lightgbm"], "trials": 3, "cv_folds": 2},
    )
    second = run_project(dropped, write_report=False)
    assert "legacy" not in registry.get(second.version).lineage.features
    gate = next(g for g in second.gate.gates if g.name == "champion")
    assert gate.evidence.get("compared", True) and "champion_value" in gate.evidence, gate.message
    assert gate.passed and "beats champion v1" in gate.message
    assert second.promoted and registry.alias("champion") == second.version


def test_a_champion_whose_columns_are_gone_does_not_trap_the_project(tmp_path: Path) -> None:
    frame = _frame(n=500, seed=1)
    assert run_project(_project(tmp_path, frame), write_report=False).promoted
    # the column is now absent from the data itself: the champion cannot be scored at all
    project = _project(tmp_path, frame.drop(columns=["legacy"]))
    second = run_project(project, write_report=False)
    gate = next(g for g in second.gate.gates if g.name == "champion")
    assert gate.passed and "impossible" in gate.message and "legacy" in gate.message
    assert not second.promoted and second.gate.passed
    assert any("assay promote" in why for why in second.review)
    registry = open_registry(project)
    assert registry.alias("champion") == 1
    promoted = promote_version(registry, second.version, reason="compared by hand", force=False)
    assert promoted.version == second.version and registry.alias("champion") == second.version
    events = [e.action for e in registry.events(limit=2)]
    assert "override" not in events


def test_without_criteria_the_first_run_registers_and_waits_for_promote(make_project) -> None:
    project = make_project(acceptance={})
    result = run_project(project, write_report=False)
    assert result.gate.passed and not result.promoted and result.champion is None
    assert len(result.review) == 1 and "assay promote N" in result.review[0]
    registry = open_registry(project)
    with pytest.raises(NotFoundError) as info:
        rollback_champion(registry, reason=None)
    assert "assay promote N" in info.value.render()
    record = promote_version(registry, result.version, reason=None, force=False)
    assert record.version == result.version and registry.alias("champion") == result.version
    # from then on the champion is the yardstick: nothing asks for review
    again = run_project(project, write_report=False)
    assert not again.review
    with pytest.raises(NotFoundError) as info:
        rollback_champion(registry, reason=None)
    assert "assay models" in info.value.render() and "assay promote N" in info.value.render()


def test_per_slice_criteria_metrics_are_evaluated(tmp_path: Path) -> None:
    from assay.candidate import evaluated_metrics
    from assay.config import parse_spec

    spec = parse_spec({
        "task": "binary", "data": {"source": "d.csv", "target": "y"},
        "metrics": {"report": ["roc_auc"]},
        "slices": [{"column": "plan", "acceptance": {"recall": ">= 0.6"}}],
    })
    assert evaluated_metrics(spec) == ["roc_auc", "recall"]


def test_a_run_judges_per_slice_criteria_on_every_level(make_project) -> None:
    strict = make_project(slices=[{"column": "segment", "acceptance": {"recall": ">= 0.99"}}])
    result = run_project(strict, write_report=False)
    gate = next(g for g in result.gate.gates if g.name == "acceptance")
    assert not gate.passed and not result.promoted
    assert "recall [segment=a]" in gate.message and "recall [segment=b]" in gate.message
    levels = [c for c in gate.evidence["criteria"] if c.get("slice") == "segment"]
    assert {c["level"] for c in levels} == {"a", "b"}
    assert all(c["judged"] == "interval" and c["interval"] is not None for c in levels)
