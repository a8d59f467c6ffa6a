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
