"""Too good to be true: perfection and one-sided errors are caught and explained."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from assay.evaluate import ConfusionMatrix, Evaluation, PlausibilityReport, check_plausibility, evaluate


def churn_with_fee(n: int = 2000, share: float = 0.126, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Churn unpredictable from usage; a fee paid by ``share`` of all rows, all of them leavers."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    frame = pd.DataFrame({"usage": rng.normal(size=n), "tenure": rng.integers(1, 60, n)})
    leavers = rng.choice(np.flatnonzero(y == 1), int(share * n), replace=False)
    fee = np.zeros(n)
    fee[leavers] = rng.uniform(20, 200, len(leavers)).round(2)
    frame["cancellation_fee_paid"] = fee
    return frame, y


def _evaluate(model, X, y, **kw) -> Evaluation:  # type: ignore[no-untyped-def]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0,
                                                        stratify=y)
    cv = cross_val_score(model, X_train, y_train, cv=3, scoring="f1")
    model.fit(X_train, y_train)
    return evaluate(model, X_test, y_test, task="binary", seed=0, n_boot=50, time_latency=False,
                    cv_scores=list(cv), X_reference=X_train, primary="f1", **kw)


def test_a_partial_leak_shows_as_precision_one_and_is_explained() -> None:
    X, y = churn_with_fee()
    ev = _evaluate(make_pipeline(SimpleImputer(), LogisticRegression()), X, y)
    report = ev.plausibility
    assert report is not None and not report.plausible
    assert ev.metrics["precision"] == 1.0 and ev.intervals["precision"] == (1.0, 1.0)
    [signal] = report.signals
    assert signal.kind == "no_errors" and signal.metric == "precision['1']"
    assert signal.rows >= 30 and signal.reference is not None and signal.reference >= 15
    assert "no false positives" in signal.message
    # the explanation: the costliest feature and the pure region, both the fee
    assert report.suspects[0].feature == "cancellation_fee_paid"
    assert report.regions[0].region == "cancellation_fee_paid > 0"
    assert report.suspect_features[0] == "cancellation_fee_paid"
    text = report.summary()
    assert "missing: cancellation_fee_paid costs" in text and "'cancellation_fee_paid > 0'" in text


def test_the_report_is_stored_with_the_evaluation_and_old_records_load() -> None:
    X, y = churn_with_fee()
    ev = _evaluate(make_pipeline(SimpleImputer(), LogisticRegression()), X, y)
    stored = json.loads(json.dumps(ev.to_dict()))
    again = Evaluation.from_dict(stored)
    assert again.plausibility == ev.plausibility
    stored.pop("plausibility")
    assert Evaluation.from_dict(stored).plausibility is None


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_breast_cancer_logistic_regression_is_plausible(seed: int) -> None:
    data = load_breast_cancer()
    X = pd.DataFrame(data.data, columns=data.feature_names)
    X_train, X_test, y_train, y_test = train_test_split(X, data.target, test_size=0.2,
                                                        random_state=seed)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    cv = cross_val_score(model, X_train, y_train, cv=5, scoring="f1")
    model.fit(X_train, y_train)
    ev = evaluate(model, X_test, y_test, task="binary", seed=0, n_boot=0, time_latency=False,
                  check_robustness=False, cv_scores=list(cv), primary="f1")
    assert ev.plausibility is not None and ev.plausibility.plausible, ev.plausibility.summary()


def test_a_perfectly_separable_task_is_flagged() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    X = pd.DataFrame({"side": np.where(y == 1, 1.0, -1.0) + rng.normal(0, 0.1, 400)})
    ev = _evaluate(make_pipeline(SimpleImputer(), LogisticRegression()), X, y)
    assert ev.plausibility is not None
    assert [s.kind for s in ev.plausibility.signals] == ["perfect"]
    assert ev.plausibility.suspects[0].feature == "side"


def _confusion(matrix: list[list[int]], labels: tuple = (0, 1)) -> ConfusionMatrix:  # type: ignore[type-arg]
    return ConfusionMatrix(labels, tuple(tuple(r) for r in matrix))


def test_few_errors_all_of_one_kind_are_plausible() -> None:
    # breast-cancer-like: 3 errors, all false negatives: (3/4)^3 is not rare
    report = check_plausibility("binary", np.zeros(114), _confusion([[42, 0], [3, 69]]),
                                primary="f1", test_value=0.98)
    assert report.plausible
    # 30 false negatives and no false positive among 80 predicted positives is not
    report = check_plausibility("binary", np.zeros(400), _confusion([[290, 0], [30, 80]]),
                                primary="f1", test_value=0.84)
    assert [s.metric for s in report.signals] == ["precision['1']"]
    assert report.signals[0].p_value is not None and report.signals[0].p_value < 0.01


def test_recall_of_one_and_multiclass() -> None:
    report = check_plausibility("binary", np.zeros(400), _confusion([[100, 40], [0, 260]]),
                                primary="f1", test_value=0.93)
    assert [s.metric for s in report.signals] == ["recall['1']"]
    assert "no false negatives among 260 actual '1' rows" in report.signals[0].message
    # a negative class that is most of the rows: a cautious model predicts it cleanly
    report = check_plausibility("binary", np.zeros(400), _confusion([[250, 40], [0, 110]]),
                                primary="f1", test_value=0.85)
    assert report.plausible
    multi = _confusion([[100, 20, 0], [10, 100, 0], [0, 0, 60]], labels=("a", "b", "c"))
    report = check_plausibility("multiclass", np.zeros(290), multi, primary="f1_macro",
                                test_value=0.9)
    assert report.plausible  # 'c' is never confused, but a and b err only 30 times among themselves
    multi = _confusion([[100, 20, 0], [10, 100, 0], [15, 5, 60]], labels=("a", "b", "c"))
    report = check_plausibility("multiclass", np.zeros(310), multi, primary="f1_macro",
                                test_value=0.85)
    assert [s.metric for s in report.signals] == ["precision['c']"]


def test_small_test_sets_prove_nothing() -> None:
    report = check_plausibility("binary", np.zeros(20), _confusion([[10, 0], [0, 10]]),
                                primary="f1", test_value=1.0)
    assert report.plausible


def test_test_metric_far_above_cross_validation() -> None:
    above = check_plausibility("binary", np.zeros(200), None, primary="roc_auc", test_value=0.97,
                               cv_scores=[0.80, 0.82, 0.79, 0.81])
    assert [s.kind for s in above.signals] == ["above_cv"]
    assert "far above cross-validation (0.805" in above.signals[0].message
    near = check_plausibility("binary", np.zeros(200), None, primary="roc_auc", test_value=0.84,
                              cv_scores=[0.80, 0.82, 0.79, 0.81])
    assert near.plausible
    errors = check_plausibility("regression", np.zeros(200), None, primary="rmse", test_value=1.0,
                                cv_scores=[2.0, 2.1, 1.9])
    assert [s.kind for s in errors.signals] == ["above_cv"] and "below" in errors.signals[0].message


def test_report_round_trip() -> None:
    report = check_plausibility("binary", np.zeros(400), _confusion([[290, 0], [30, 80]]),
                                primary="f1", test_value=0.84)
    assert PlausibilityReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report
