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
from assay.errors import ConfigError
from assay.evaluate import Criterion, Evaluation, evaluate, paired_bootstrap
from assay.gate import (
    GATE_NAMES,
    GateDecision,
    acceptance_gate,
    baseline_gate,
    champion_gate,
    decide,
    plausibility_gate,
)


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


def versus(a, b, X, y, metric="roc_auc"):
    """The paired comparison of model ``a`` (the yardstick) with model ``b``."""
    return paired_bootstrap("binary", metric, y, a.predict(X), a.predict_proba(X),
                            b.predict(X), b.predict_proba(X), classes=b.classes_, seed=0)


def test_all_gates_pass_for_a_good_model(fitted) -> None:
    model, dummy, X, y, ev = fitted
    decision = decide(ev, spec(acceptance={"roc_auc": ">= 0.75"}, serving={"latency_p99_ms": 1000}),
                      baseline_value=0.5, baseline=versus(dummy, model, X, y))
    assert decision.passed and not decision.review, decision.to_dict()


def test_acceptance_and_latency_fail_with_evidence(fitted) -> None:
    model, dummy, X, y, ev = fitted
    decision = decide(ev, spec(acceptance={"roc_auc": ">= 0.9999"}, serving={"latency_p99_ms": 1e-6}),
                      baseline_value=0.5, baseline=versus(dummy, model, X, y))
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
def test_acceptance_is_judged_on_the_interval_by_default_and_on_the_point_on_request(fitted) -> None:
    *_, ev = fitted
    low, high = ev.intervals["roc_auc"]
    point = ev.metrics["roc_auc"]
    assert low < point < high
    between = f">= {(low + point) / 2:.6f}"  # the point clears it, the lower bound does not
    strict = acceptance_gate(ev, spec(acceptance={"roc_auc": between}))
    assert not strict.passed
    judged = Criterion.from_dict(strict.evidence["criteria"][0])
    assert judged.judged == "interval" and judged.judged_value == pytest.approx(low)
    assert judged.observed == pytest.approx(point) and judged.interval == pytest.approx((low, high))
    assert f"{point:.4g}" in strict.message and f"lower bound {low:.4g} judged" in strict.message
    lenient = acceptance_gate(ev, spec(acceptance={"roc_auc": between}, gate={"acceptance_on": "point"}))
    assert lenient.passed
    assert Criterion.from_dict(lenient.evidence["criteria"][0]).judged == "point"
    # a '<=' criterion is judged on the upper bound
    loss_low, loss_high = ev.intervals["log_loss"]
    upper = acceptance_gate(ev, spec(acceptance={"log_loss": f"<= {(loss_low + loss_high) / 2:.6f}"}))
    assert not upper.passed and "upper bound" in upper.message
    clear = acceptance_gate(ev, spec(acceptance={"roc_auc": f">= {low - 0.01:.6f}"}))
    assert clear.passed


def test_criteria_stored_before_interval_judging_load_as_point_judgements() -> None:
    old = {"metric": "roc_auc", "threshold": ">= 0.8", "observed": 0.85, "interval": [0.8, 0.9],
           "passed": True, "attribute": None, "conclusive": False, "note": ""}
    criterion = Criterion.from_dict(old)
    assert criterion.judged == "point" and criterion.judged_value == 0.85
    assert Criterion.from_dict(criterion.to_dict()) == criterion


def test_baseline_gate_passes_a_model_that_clearly_beats_the_dummy(fitted) -> None:
    model, dummy, X, y, _ = fitted
    gate = baseline_gate(versus(dummy, model, X, y), spec())
    assert gate.passed and "beats the dummy baseline" in gate.message
    assert gate.evidence["ci"][0] > 0 and gate.evidence["baseline_value"] == pytest.approx(0.5)


def test_baseline_gate_fails_a_model_no_better_than_the_dummy(fitted) -> None:
    model, dummy, X, y, _ = fitted
    # planted: the "model" is a second dummy, so the improvement's interval holds 0
    other = DummyClassifier(strategy="prior").fit(X, y)
    gate = baseline_gate(versus(dummy, other, X, y), spec())
    assert not gate.passed and "includes 0" in gate.message
    assert gate.evidence["ci"][0] <= 0 <= gate.evidence["ci"][1]
    worse = baseline_gate(versus(model, dummy, X, y), spec())
    assert not worse.passed and "worse than the dummy" in worse.message
    assert not baseline_gate(None, spec()).passed
    assert "baseline" in {g.name for g in decide(fitted[-1], spec(), baseline=versus(dummy, other, X, y)).failed}


def test_without_acceptance_criteria_the_first_champion_needs_an_explicit_promotion(fitted) -> None:
    model, dummy, X, y, ev = fitted
    first = decide(ev, spec(serving={"latency_p99_ms": 1000}), baseline=versus(dummy, model, X, y))
    assert first.passed and len(first.review) == 1 and "assay promote" in first.review[0]
    assert GateDecision.from_dict(first.to_dict()).review == first.review
    # once there is a champion, it is the yardstick: no review asked for
    later = acceptance_gate(ev, spec(), champion_version=1)
    assert later.passed and "review" not in later.evidence
    with_criteria = decide(ev, spec(acceptance={"roc_auc": ">= 0.6"}, serving={"latency_p99_ms": 1000}),
                           baseline=versus(dummy, model, X, y))
    assert with_criteria.passed and not with_criteria.review


def test_a_champion_that_cannot_be_scored_does_not_trap_the_project(fitted) -> None:
    note = "the champion was trained on columns the current data no longer has: region"
    gate = champion_gate(None, spec(), champion_version=3, note=note, comparable=False)
    assert gate.passed and "impossible" in gate.message and "region" in gate.message
    assert "assay promote" in gate.evidence["review"] and gate.evidence["compared"] is False
    # a comparison that can be made still decides
    model, dummy, X, y, _ = fitted
    assert not champion_gate(versus(model, dummy, X, y), spec(), champion_version=3).passed


@pytest.fixture(scope="module")
def sliced(fitted) -> tuple:
    """The model on test rows with a ``plan`` slice: level ``bad`` has its labels flipped,
    level ``rare`` has 10 rows."""
    model, _, X, y, _ = fitted
    n = len(X)
    plan = np.where(np.arange(n) % 3 == 0, "bad", "good").astype(object)
    plan[:10] = "rare"
    y_planted = np.where(plan == "bad", 1 - y, y)
    frame = pd.DataFrame({"plan": plan})
    ev = evaluate(model, X, y_planted, task="binary", slices=frame, min_slice_size=30, seed=0,
                  check_robustness=False, time_latency=False, slice_interval_metrics=["recall"])
    return ev, pd.Series(plan)


def test_per_slice_criteria_fail_naming_the_slice_and_level(sliced) -> None:
    ev, _ = sliced
    s = spec(slices=[{"column": "plan", "acceptance": {"recall": ">= 0.6"}}])
    gate = acceptance_gate(ev, s)
    assert not gate.passed
    assert "recall [plan=bad]" in gate.message and "[plan=good]" not in gate.message.split("; ")[0]
    levels = {c["level"]: c for c in gate.evidence["criteria"]}
    assert levels["bad"]["passed"] is False and levels["good"]["passed"] is True
    assert levels["rare"]["passed"] is True and "too few rows" in levels["rare"]["note"]


def test_per_slice_criteria_hold_on_clean_slices(sliced, fitted) -> None:
    model, _, X, y, _ = fitted
    plan = np.where(np.arange(len(X)) % 2 == 0, "a", "b")
    ev = evaluate(model, X, y, task="binary", slices=pd.DataFrame({"plan": plan}), seed=0,
                  check_robustness=False, time_latency=False, slice_interval_metrics=["recall"])
    s = spec(slices=["other", {"column": "plan", "acceptance": {"recall": ">= 0.45"}}])
    gate = acceptance_gate(ev, s)
    assert gate.passed, gate.message
    criteria = [Criterion.from_dict(c) for c in gate.evidence["criteria"]]
    assert {c.level for c in criteria} == {"a", "b"}
    # each level is judged on the lower bound of its own bootstrap interval
    for c in criteria:
        assert c.judged == "interval" and c.interval is not None
        assert c.judged_value == c.interval[0] < c.observed


def test_slice_levels_stored_without_intervals_load() -> None:
    from assay.evaluate import SliceLevel

    old = {"level": "a", "n": 40, "metrics": {"recall": 0.7}, "reliable": True}
    assert SliceLevel.from_dict(old).intervals == {}
    level = SliceLevel("a", 40, {"recall": 0.7}, True, {"recall": (0.6, 0.8)})
    assert SliceLevel.from_dict(level.to_dict()) == level
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


def test_a_champion_relying_on_a_dropped_column_does_not_hold_the_candidate_back(fitted) -> None:
    model, dummy, X, y, ev = fitted
    # the champion (the fitted model) beats the candidate (a dummy) on these rows
    comparison = versus(model, dummy, X, y)
    held = champion_gate(comparison, spec(), champion_version=1)
    assert not held.passed and "the champion stays" in held.message
    # once assay.yaml drops a column the champion used, its score is no yardstick: the
    # candidate passes, with the comparison as evidence, and waits for an explicit promote
    freed = champion_gate(comparison, spec(), champion_version=1, retired=("fee_paid",))
    assert freed.passed and "fee_paid" in freed.message and "assay promote" in freed.message
    assert freed.evidence["retired_columns"] == ["fee_paid"]
    assert freed.evidence["champion_value"] == pytest.approx(comparison.value_a)
    decision = decide(ev, spec(serving={"latency_p99_ms": 1000}), comparison=comparison,
                      champion_version=1, champion_retired=("fee_paid",))
    assert any("fee_paid" in r for r in decision.review)
    # a candidate that beats such a champion anyway passes plainly
    beats = champion_gate(versus(dummy, model, X, y), spec(), champion_version=1,
                          retired=("fee_paid",))
    assert beats.passed and "beats champion v1" in beats.message and "review" not in beats.evidence
