"""Each gate on real evaluations: known passes, known failures, and the champion rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.impute import SimpleImputer

from assay.config import parse_spec
from assay.evaluate import evaluate, paired_bootstrap
from assay.gate import champion_gate, decide


@pytest.fixture(scope="module")
def fitted() -> tuple:
    X, y = make_classification(n_samples=1200, n_features=5, n_informative=4, n_redundant=0,
                               class_sep=1.5, random_state=0)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
    frame["group"] = np.where(np.arange(len(frame)) % 2 == 0, "a", "b")
    features = [f"x{i}" for i in range(5)]
    model = make_pipeline(SimpleImputer(), LogisticRegression()).fit(frame[features][:800], y[:800])
    test, y_test = frame[800:], y[800:]
    ev = evaluate(model, test[features], y_test, task="binary", protected=test[["group"]],
                  seed=0, X_reference=frame[features][:800])
    dummy = DummyClassifier().fit(frame[features][:800], y[:800])
    return model, dummy, test[features], y_test, ev


def spec(**extra):
    return parse_spec({"task": "binary", "data": {"source": "d.csv", "target": "y"}, **extra})


def test_all_gates_pass_for_a_good_model(fitted) -> None:
    *_, ev = fitted
    decision = decide(ev, spec(acceptance={"roc_auc": ">= 0.75"}, serving={"latency_p99_ms": 1000}),
                      baseline_value=0.5)
    assert decision.passed, decision.to_dict()


def test_acceptance_and_latency_fail_with_evidence(fitted) -> None:
    *_, ev = fitted
    decision = decide(ev, spec(acceptance={"roc_auc": ">= 0.9999"}, serving={"latency_p99_ms": 1e-6}),
                      baseline_value=0.5)
    failed = {g.name: g for g in decision.failed}
    assert set(failed) == {"acceptance", "latency"}
    assert "roc_auc" in failed["acceptance"].message and "needs >= 0.9999" in failed["acceptance"].message
    assert failed["latency"].evidence["sla_ms"] == 1e-6


def test_fairness_limit_is_checked_per_attribute(fitted) -> None:
    *_, ev = fitted
    strict = decide(ev, spec(fairness={"protected": ["group"], "limits": {"demographic_parity_difference": "<= 0"}}),
                    baseline_value=0.5)
    gate = next(g for g in strict.gates if g.name == "fairness")
    assert not gate.passed and "[group]" in gate.message


def test_champion_gate_ties_keep_the_champion_and_a_clear_win_passes(fitted) -> None:
    model, dummy, X, y, _ = fitted
    same = paired_bootstrap("binary", "roc_auc", y, model.predict(X), model.predict_proba(X),
                            model.predict(X), model.predict_proba(X), classes=model.classes_, seed=0)
    assert not champion_gate(same, spec(), champion_version=1).passed
    better = paired_bootstrap("binary", "roc_auc", y, dummy.predict(X), dummy.predict_proba(X),
                              model.predict(X), model.predict_proba(X), classes=model.classes_, seed=0)
    verdict = champion_gate(better, spec(), champion_version=1)
    assert verdict.passed and verdict.evidence["delta"] > 0.2
    assert champion_gate(None, spec(), champion_version=None).passed
    assert not champion_gate(None, spec(), champion_version=3, note="columns differ").passed


def test_regression_fairness_limits_are_checked_on_group_errors() -> None:
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    n = 1200
    frame = pd.DataFrame({"x": rng.normal(size=n), "region": rng.choice(["n", "s"], n)})
    # the south is noisier: the model's errors there are about three times larger
    y = 3 * frame["x"] + rng.normal(0, np.where(frame["region"] == "s", 3.0, 1.0))
    model = Ridge().fit(frame[["x"]][:800], y[:800])
    test = frame[800:]
    ev = evaluate(model, test[["x"]], y[800:], task="regression", protected=test[["region"]],
                  seed=0, n_boot=0, check_robustness=False, time_latency=False)
    regression = parse_spec({
        "task": "regression", "data": {"source": "d.csv", "target": "y"},
        "fairness": {"protected": ["region"],
                     "limits": {"mae_ratio": ">= 0.8", "rmse_difference": "<= 100"}},
    })
    gate = next(g for g in decide(ev, regression).gates if g.name == "fairness")
    assert not gate.passed and gate.message.startswith("1 of 2 fail")
    assert "mae_ratio [region]" in gate.message and "no protected attribute" not in gate.message
    ratio = ev.fairness[0].mae_ratio
    assert ratio is not None and 0.2 < ratio < 0.5


def test_calibration_gate(fitted) -> None:
    from dataclasses import replace

    from assay.evaluate.calibration import Recalibration

    *_, ev = fitted
    assert ev.curves.calibration is not None
    ece = ev.curves.calibration.ece
    off = next(g for g in decide(ev, spec()).gates if g.name == "calibration")
    assert off.passed and "no calibration limit" in off.message
    loose = decide(ev, spec(calibration={"max_ece": min(0.99, ece + 0.05)}))
    assert next(g for g in loose.gates if g.name == "calibration").passed
    recal = Recalibration(ece / 2, "isotonic", True, 0.2, 0.01, test_before=0.3, test_after=ece)
    tight = decide(replace(ev, recalibration=recal), spec(calibration={"max_ece": ece / 2}))
    gate = next(g for g in tight.gates if g.name == "calibration")
    assert not gate.passed and "after isotonic recalibration (before: 0.3000)" in gate.message
    assert gate.evidence["ece"] == ece and gate.evidence["recalibration"]["adopted"] is True
