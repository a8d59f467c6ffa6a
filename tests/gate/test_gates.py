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
from assay.evaluate import Evaluation, evaluate, paired_bootstrap
from assay.errors import ConfigError
from assay.gate import GATE_NAMES, champion_gate, decide, plausibility_gate


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


# ----------------------------------------------------------------------------- plausibility


def _churn_with_fee(n: int = 2000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Churn unpredictable from usage; a fee paid by 12.6% of all rows, every one a leaver."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    frame = pd.DataFrame({"usage": rng.normal(size=n), "tenure": rng.integers(1, 60, n)})
    leavers = rng.choice(np.flatnonzero(y == 1), int(0.126 * n), replace=False)
    frame["cancellation_fee_paid"] = 0.0
    frame.loc[leavers, "cancellation_fee_paid"] = rng.uniform(20, 200, len(leavers)).round(2)
    return frame, y


def _leaky_evaluation(drop: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    frame, y = _churn_with_fee()
    frame = frame.drop(columns=list(drop))
    model = make_pipeline(SimpleImputer(), LogisticRegression())
    model.fit(frame[:1500], y[:1500])
    return evaluate(model, frame[1500:], y[1500:], task="binary", seed=0, n_boot=50,
                    time_latency=False, X_reference=frame[:1500], primary="f1")


def test_plausibility_gate_refuses_a_leak_and_names_the_column() -> None:
    gate = plausibility_gate(_leaky_evaluation(), spec())
    assert not gate.passed
    assert gate.message.startswith("too good to be true: precision of '1' is 1.000 [1.000, 1.000]")
    assert "missing: cancellation_fee_paid costs" in gate.message
    assert "'cancellation_fee_paid > 0'" in gate.message
    assert "data.drop" in gate.message and "gate.plausibility: false" in gate.message
    assert "--force" in gate.message
    assert gate.evidence["suspect_features"][0] == "cancellation_fee_paid"
    assert gate.evidence["signals"][0]["kind"] == "no_errors"
    decision = decide(_leaky_evaluation(), spec(), baseline_value=0.0)
    assert "plausibility" in {g.name for g in decision.failed}


def test_plausibility_gate_passes_once_the_column_is_dropped() -> None:
    gate = plausibility_gate(_leaky_evaluation(drop=("cancellation_fee_paid",)), spec())
    assert gate.passed and gate.message.startswith("no sign of a leak")


def test_plausibility_gate_can_be_switched_off_for_a_separable_problem() -> None:
    gate = plausibility_gate(_leaky_evaluation(), spec(gate={"plausibility": False}))
    assert gate.passed and "gate.plausibility: false" in gate.message


def test_plausibility_switch_is_validated() -> None:
    with pytest.raises(ConfigError, match="gate.plausibility"):
        spec(gate={"plausibility": "sometimes"})


def test_plausibility_gate_passes_a_clean_model_and_an_old_evaluation(fitted) -> None:
    *_, ev = fitted
    gate = plausibility_gate(ev, spec())
    assert gate.passed, gate.message
    old = Evaluation.from_dict({k: v for k, v in ev.to_dict().items() if k != "plausibility"})
    assert plausibility_gate(old, spec()).passed
    assert GATE_NAMES.index("plausibility") < GATE_NAMES.index("champion")
    assert [g.name for g in decide(ev, spec(), baseline_value=0.5).gates] == list(GATE_NAMES)
