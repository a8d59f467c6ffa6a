"""``assay run`` and ``assay retrain`` build their candidate through the same stage."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest

from assay.monitor._candidate import _assemble
from assay.monitor.retrain import _Retrain
from assay.pipeline import open_registry, run_project
from assay.project import Project
from assay.store.database import utcnow

from .conftest import classification_frame

#: lineage fields that name why and by which process a version was trained, or hold
#: digests of documents with wall times in them (search history, evaluation latency)
_PER_CALL = {"reason", "audit_id", "search", "evaluation", "training_data", "retrain_id", "retrain"}


@pytest.mark.slow
def test_run_and_retrain_register_the_same_candidate_on_the_same_data(
    make_project: Callable[..., Project],
) -> None:
    frame = classification_frame(400, seed=3)
    # the file is not in time order: both paths must order the rows before the search
    hours = np.random.default_rng(3).permutation(len(frame))
    frame["t"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(hours, unit="h")
    project = make_project(
        frame, data={"source": "data.csv", "target": "y", "time": "t"},
        split={"strategy": "chronological"},
    )
    run = run_project(project, write_report=False)
    registry = open_registry(project)
    if registry.alias("champion") is None:
        registry.promote(
                run.version, gate_passed=run.gate.passed, force=not run.gate.passed,
                reason="test fixture",
            )
    first = registry.get(run.version)

    data = _assemble(project, registry, first, utcnow())
    assert data.summary["traffic_rows"] == 0
    _Retrain(project, registry, None, None, utcnow()).train("r1", "drift", first, data)
    second = registry.list()[-1]

    assert second.version != first.version and second.lineage.retrain_id == "r1"
    assert (second.family, second.params) == (first.family, first.params)
    primary = first.metrics["primary"]
    assert second.metrics["test"][primary] == pytest.approx(first.metrics["test"][primary])
    assert second.metrics["validation"] == pytest.approx(first.metrics["validation"])
    assert second.metrics["cv"] == first.metrics["cv"]

    def same_fields(lineage: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in lineage.items() if k not in _PER_CALL}

    assert same_fields(second.lineage.to_dict()) == same_fields(first.lineage.to_dict())
    # the same drift reference (rows, cap and sample) is stored, byte for byte
    assert first.lineage.reference is not None
    assert second.lineage.reference == first.lineage.reference
    assert first.lineage.reason == f"assay run {run.run_id}"
    assert second.lineage.reason == "drift" and second.lineage.retrain is not None
    assert second.lineage.retrain["champion"] == first.version
