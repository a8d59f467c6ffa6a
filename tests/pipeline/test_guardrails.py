"""Guardrails in a whole run: recalibration of a miscalibrated model, fairness mitigation on
planted bias, and nothing at all on clean data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from assay.model.loaded import LoadedModel
from assay.pipeline import run_project
from assay.registry import open_registry
from assay.train.calibration import RecalibratedClassifier


def _step_frame(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    """P(y=1) jumps from 0.1 to 0.9 at x = 0: a logistic regression's smooth curve is
    miscalibrated near the jump."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = (rng.random(n) < np.where(x < 0, 0.1, 0.9)).astype(int)
    return pd.DataFrame({"x": x, "z": rng.normal(size=n), "y": y})


def _biased_frame(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    """Group 'a' gets the positive label far more often at the same x; the model sees the group."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b"], n)
    x = rng.normal(size=n)
    logit = x + np.where(group == "a", 1.5, -1.5)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"x": x, "z": rng.normal(size=n), "group": group, "y": y})


def test_miscalibrated_model_is_recalibrated_and_registered(make_project) -> None:
    project = make_project(_step_frame(), slices=[], calibration={"max_ece": 0.05})
    result = run_project(project, write_report=True)
    recal = result.recalibration
    assert recal is not None and recal.adopted and recal.method in ("isotonic", "sigmoid")
    assert recal.validation_before > 0.05 and recal.validation_after < recal.validation_before
    assert recal.test_before is not None and recal.test_after is not None
    assert recal.test_before > 0.08 and recal.test_after < recal.test_before / 2
    gate = next(g for g in result.gate.gates if g.name == "calibration")
    assert gate.passed and f"before: {recal.test_before:.4f}" in gate.message
    registry = open_registry(project)
    model = registry.load_model(result.version)
    assert isinstance(model, RecalibratedClassifier)
    # serving loads the recalibrated version and answers with its calibrated probabilities
    loaded = LoadedModel.load(registry, result.version)
    rows = [{"x": 0.05, "z": 0.0}, {"x": -2.0, "z": 0.0}]
    answers = loaded.predict(rows)
    expected = model.predict_proba(pd.DataFrame(rows))
    assert answers[1].prediction == 0
    assert answers[0].probabilities is not None
    assert answers[0].probabilities["1"] == pytest.approx(expected[0, 1])
    assert result.report is not None and "Calibration" in open(result.report).read()


def test_calibrated_model_with_the_limit_is_unchanged(make_project) -> None:
    result = run_project(make_project(calibration={"max_ece": 0.2}), write_report=False)
    recal = result.recalibration
    assert recal is not None and not recal.adopted and "within the limit" in recal.note
    assert recal.test_before == recal.test_after
    assert next(g for g in result.gate.gates if g.name == "calibration").passed


def test_planted_bias_trains_mitigated_alternatives(make_project) -> None:
    project = make_project(
        _biased_frame(), slices=[],
        fairness={"protected": ["group"], "limits": {"demographic_parity_difference": "<= 0.1"}},
    )
    result = run_project(project, write_report=True)
    assert not next(g for g in result.gate.gates if g.name == "fairness").passed
    comparison = result.mitigation
    assert comparison is not None and comparison.attribute == "group"
    assert any("demographic_parity_difference <= 0.1 fails" in r for r in comparison.reasons)
    assert [m.method for m in comparison.models] == ["none", "reweight", "threshold", "reductions"]
    before = comparison.models[0].fairness["group"]["demographic_parity_difference"]
    best = comparison.best("demographic_parity_difference")
    assert before is not None and before > 0.5
    assert best is not None and best.fairness["group"]["demographic_parity_difference"] < 0.15
    assert any(m.limits_hold for m in comparison.models[1:])
    # the chosen model stays the registered one; the comparison is stored with its evaluation
    registry = open_registry(project)
    assert not isinstance(registry.load_model(result.version), RecalibratedClassifier)
    assert result.test_uses == 2  # the registration and the mitigation comparison
    report = open(result.report or "").read()
    assert "Mitigation: group (demographic_parity)" in report and "reductions" in report


def test_clean_data_runs_no_mitigation(make_project) -> None:
    project = make_project(
        fairness={"protected": ["segment"], "limits": {"demographic_parity_difference": "<= 0.2"}}
    )
    result = run_project(project, write_report=False)
    assert next(g for g in result.gate.gates if g.name == "fairness").passed
    assert result.mitigation is None and result.recalibration is None
    assert result.test_uses == 1


@pytest.mark.parametrize("mode", ["off"])
def test_mitigation_off_trains_nothing(make_project, mode: str) -> None:
    project = make_project(
        _biased_frame(), slices=[],
        fairness={"protected": ["group"], "mitigation": mode,
                  "limits": {"demographic_parity_difference": "<= 0.1"}},
    )
    result = run_project(project, write_report=False)
    assert result.mitigation is None and result.test_uses == 1
