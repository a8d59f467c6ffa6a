"""The evaluate() stage, its serialisable result and the acceptance checks."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import roc_auc_score

import assay.evaluate as evaluate_pkg
from assay.config.metrics import TASK_METRICS
from assay.config.spec import parse_threshold
from assay.errors import ConfigError, DataError
from assay.evaluate import (
    Criterion,
    CVSummary,
    Evaluation,
    check_acceptance,
    check_fairness,
    evaluate,
)


@pytest.fixture
def binary_eval(fitted, seed: int) -> Evaluation:
    model, X, y, X_train, _ = fitted
    return evaluate(
        model,
        X,
        y,
        task="binary",
        slices=X[["region", "age"]],
        protected=X[["region"]],
        seed=seed,
        n_boot=100,
        cv_scores=[0.90, 0.92, 0.88],
        artifact_size=4096,
        X_reference=X_train,
    )


def test_binary_evaluation_bundles_every_part(binary_eval: Evaluation, fitted) -> None:
    model, X, y, _, _ = fitted
    ev = binary_eval
    assert ev.task == "binary" and ev.n_rows == len(X) and ev.classes == (0, 1)
    assert ev.primary == "roc_auc"
    assert list(ev.metrics) == list(TASK_METRICS["binary"])
    assert ev.metrics["roc_auc"] == pytest.approx(roc_auc_score(y, model.predict_proba(X)[:, 1]))
    low, high = ev.intervals["roc_auc"]
    assert low <= ev.metrics["roc_auc"] <= high
    assert ev.confusion is not None and sum(map(sum, ev.confusion.matrix)) == len(X)
    assert ev.curves.roc and ev.curves.calibration is not None
    assert [s.column for s in ev.slices] == ["region", "age"]
    assert ev.fairness[0].attribute == "region"
    assert ev.robustness is not None and ev.robustness.metric == "roc_auc"
    assert ev.latency is not None and ev.latency.method == "predict_proba"
    assert ev.artifact_size_bytes == 4096
    assert ev.cv == CVSummary.from_scores([0.90, 0.92, 0.88])
    assert ev.cv.mean == pytest.approx(0.90) and ev.cv.std == pytest.approx(0.02)
    assert (ev.cv.min, ev.cv.max) == (0.88, 0.92)


def test_evaluation_round_trips_through_json(binary_eval: Evaluation) -> None:
    text = json.dumps(binary_eval.to_dict())
    again = Evaluation.from_dict(json.loads(text))
    assert again == binary_eval
    assert json.dumps(again.to_dict()) == text


def test_multiclass_and_regression_evaluations_round_trip(seed: int) -> None:
    X, y = make_classification(
        n_samples=450, n_features=5, n_informative=4, n_redundant=0, n_classes=3, random_state=seed
    )
    frame = pd.DataFrame(X, columns=list("abcde"))
    labels = np.array(["low", "mid", "high"])[y]
    clf = LogisticRegression(max_iter=500).fit(frame.iloc[:300], labels[:300])
    ev = evaluate(
        clf,
        frame.iloc[300:],
        labels[300:],
        task="multiclass",
        protected=pd.DataFrame({"g": np.resize(["u", "v"], 150)}),
        n_boot=50,
        time_latency=False,
    )
    assert ev.primary == "f1_macro" and set(ev.classes) == {"low", "mid", "high"}
    assert len(ev.fairness[0].per_class) == 3
    assert Evaluation.from_dict(json.loads(json.dumps(ev.to_dict()))) == ev

    target = frame["a"] * 2 + 5
    reg = LinearRegression().fit(frame.iloc[:300], target.iloc[:300])
    ev = evaluate(
        reg,
        frame.iloc[300:],
        target.iloc[300:],
        task="regression",
        metrics=["mae", "r2"],
        n_boot=50,
        time_latency=False,
    )
    assert ev.primary == "mae"  # rmse (the default) is not reported, so the first one is used
    assert list(ev.metrics) == ["mae", "r2"] and ev.confusion is None
    assert ev.curves.residuals is not None and ev.fairness == ()
    assert Evaluation.from_dict(json.loads(json.dumps(ev.to_dict()))) == ev


def test_acceptance_pass_fail_and_conclusiveness(binary_eval: Evaluation) -> None:
    auc = binary_eval.metrics["roc_auc"]
    low, high = binary_eval.intervals["roc_auc"]
    criteria = check_acceptance(
        binary_eval,
        {
            "roc_auc": f">= {low - 0.01:.4f}",
            "accuracy": ">= 0.999",
            "log_loss": parse_threshold("<= 5"),
        },
    )
    by_metric = {c.metric: c for c in criteria}
    assert by_metric["roc_auc"].passed and by_metric["roc_auc"].conclusive
    assert by_metric["roc_auc"].observed == auc and by_metric["roc_auc"].interval == (low, high)
    assert not by_metric["accuracy"].passed
    assert by_metric["log_loss"].passed and by_metric["log_loss"].threshold == "<= 5"
    # a threshold inside the interval passes on the point estimate but is not conclusive
    mid = (low + auc) / 2
    (inside,) = check_acceptance(binary_eval, {"roc_auc": f">= {mid}"})
    assert inside.passed and inside.conclusive is False
    assert Criterion.from_dict(json.loads(json.dumps(inside.to_dict()))) == inside


def test_acceptance_fails_a_metric_that_was_not_computed(fitted) -> None:
    model, X, y, _, _ = fitted
    ev = evaluate(
        model,
        X,
        y,
        task="binary",
        metrics=["accuracy"],
        n_boot=0,
        check_robustness=False,
        time_latency=False,
    )
    (criterion,) = check_acceptance(ev, {"roc_auc": ">= 0.5"})
    assert not criterion.passed and criterion.observed is None
    assert "could not be computed" in criterion.note


def test_acceptance_errors_name_the_key(binary_eval: Evaluation) -> None:
    with pytest.raises(ConfigError, match=r"acceptance\.rmse: 'rmse' is not a binary metric"):
        check_acceptance(binary_eval, {"rmse": "<= 1"})
    with pytest.raises(ConfigError, match=r"acceptance\.f1: '0.8' is not a threshold"):
        check_acceptance(binary_eval, {"f1": "0.8"})


def test_fairness_limits_check_every_attribute(fitted, seed: int) -> None:
    model, X, y, _, _ = fitted
    ev = evaluate(
        model,
        X,
        y,
        task="binary",
        protected=X[["region", "age"]],
        n_boot=0,
        check_robustness=False,
        time_latency=False,
        seed=seed,
    )
    criteria = check_fairness(
        ev, {"disparate_impact_ratio": ">= 0.0", "demographic_parity_difference": "<= 0.0"}
    )
    assert [(c.metric, c.attribute) for c in criteria] == [
        ("disparate_impact_ratio", "region"),
        ("disparate_impact_ratio", "age"),
        ("demographic_parity_difference", "region"),
        ("demographic_parity_difference", "age"),
    ]
    assert all(c.passed for c in criteria[:2])
    assert not any(c.passed for c in criteria[2:])  # some gap always exists
    assert criteria[2].observed == ev.fairness[0].demographic_parity_difference


def test_fairness_limit_without_protected_attributes_fails(binary_eval: Evaluation) -> None:
    (criterion,) = check_fairness(
        replace(binary_eval, fairness=()), {"equalized_odds_difference": "<= 0.1"}
    )
    assert not criterion.passed and "no protected attribute" in criterion.note
    with pytest.raises(
        ConfigError, match=r"fairness\.limits\.parity: 'parity' is not a fairness limit of a binary"
    ):
        check_fairness(binary_eval, {"parity": "<= 0.1"})
    with pytest.raises(ConfigError, match=r"fairness\.limits\.mae_ratio: .*expected one of: "
                                          r"demographic_parity_difference"):
        check_fairness(binary_eval, {"mae_ratio": ">= 0.8"})


def test_model_without_imputer_does_not_crash_the_evaluation(frame) -> None:
    X, y = frame
    numeric = X[["a", "b", "c", "d"]]
    model = LogisticRegression().fit(numeric.iloc[:400], y[:400])
    ev = evaluate(model, numeric.iloc[400:], y[400:], task="binary", n_boot=0, time_latency=False)
    assert ev.robustness is not None
    assert set(ev.robustness.unanswered) == {"missing:a", "missing:b", "missing:c", "missing:d"}


def test_evaluate_input_errors(fitted) -> None:
    model, X, y, _, _ = fitted
    with pytest.raises(ConfigError, match="task: the task is binary but the model knows"):
        three = LogisticRegression().fit(X[["a", "b"]], np.resize([0, 1, 2], len(X)))
        evaluate(three, X[["a", "b"]], np.resize([0, 1, 2], len(X)), task="binary")
    with pytest.raises(DataError, match="y has a different number of rows"):
        evaluate(model, X, y[:-1], task="binary")
    with pytest.raises(
        DataError, match="column 'y': the labels contain missing values.*got 1 missing"
    ):
        evaluate(model, X, np.where(np.arange(len(y)) == 3, np.nan, y), task="binary")
    with pytest.raises(ConfigError, match=r"metrics: 'mae' is not a binary metric"):
        evaluate(model, X, y, task="binary", metrics=["mae"])
    with pytest.raises(DataError, match="cv_scores.*finite"):
        CVSummary.from_scores([0.9, float("nan")])


def test_public_names_are_pinned() -> None:
    assert set(evaluate_pkg.__all__) == {
        "FAIRNESS_METRICS",
        "PROBA_METRICS",
        "FeatureCost",
        "PlausibilityReport",
        "PlausibilitySignal",
        "check_plausibility",
        "CVSummary",
        "Calibration",
        "ClassFairness",
        "ConfusionMatrix",
        "Criterion",
        "Curve",
        "Curves",
        "Evaluation",
        "FairnessResult",
        "GroupRates",
        "LatencyReport",
        "LatencyRound",
        "PairedComparison",
        "ResidualSummary",
        "RobustnessCase",
        "RobustnessReport",
        "ServedPath",
        "SliceLevel",
        "SliceReport",
        "bootstrap_intervals",
        "build_curves",
        "check_acceptance",
        "check_fairness",
        "check_slice_acceptance",
        "compute_confusion",
        "compute_metrics",
        "evaluate",
        "expected_calibration_error",
        "fairness_metrics",
        "measure_latency",
        "metric_value",
        "paired_bootstrap",
        "reaggregate",
        "resample_index",
        "resampled_metrics",
        "robustness",
        "slice_metrics",
    }
    assert all(hasattr(evaluate_pkg, name) for name in evaluate_pkg.__all__)


def test_acceptance_without_an_interval_is_judged_on_the_point_and_says_so() -> None:
    from assay.evaluate import Evaluation, check_acceptance

    ev = Evaluation(task="binary", n_rows=100, classes=(0, 1), primary="roc_auc",
                    metrics={"roc_auc": 0.8, "recall": 0.7}, intervals={"recall": (0.55, 0.8)})
    roc, recall = check_acceptance(ev, {"roc_auc": ">= 0.75", "recall": ">= 0.6"}, on="interval")
    assert roc.passed and roc.judged == "point" and "no bootstrap interval" in roc.note
    assert not recall.passed and recall.judged == "interval" and recall.judged_value == 0.55
    point = check_acceptance(ev, {"recall": ">= 0.6"}, on="point")[0]
    assert point.passed and point.judged_value == 0.7 and point.conclusive is False
