"""Objective hints, threshold choice, and the scoring of predictions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from assay.data.schema import infer_schema
from assay.errors import ConfigError
from assay.train.context import BuildContext
from assay.train.curves import final_model
from assay.train.families import get_family
from assay.train.objective import (
    ObjectiveHints,
    ThresholdedClassifier,
    choose_threshold,
    objective_for,
)
from assay.train.pipeline import fit_model
from assay.train.scoring import score_predictions


@pytest.mark.parametrize(
    ("task", "metric", "loss", "balanced", "threshold"),
    [
        ("regression", "mae", "l1", False, None),
        ("regression", "median_ae", "l1", False, None),
        ("regression", "rmse", "default", False, None),
        ("binary", "f1", "default", True, "f1"),
        ("binary", "recall", "default", True, "f2"),
        ("binary", "precision", "default", False, "f0.5"),
        ("binary", "balanced_accuracy", "default", True, "balanced_accuracy"),
        ("binary", "roc_auc", "default", False, None),
        ("multiclass", "f1_macro", "default", True, None),
        ("multiclass", "accuracy", "default", False, None),
        ("text-classification", "f1_macro", "default", True, None),
    ],
)
def test_objective_for_maps_the_primary_metric(
    task: str, metric: str, loss: str, balanced: bool, threshold: str | None
) -> None:
    hints = objective_for(task, metric)
    assert (hints.loss, hints.balance_classes, hints.threshold_metric) == (
        loss,
        balanced,
        threshold,
    )
    assert hints.tune_threshold is (threshold is not None)
    assert ObjectiveHints.from_dict(json.loads(json.dumps(hints.to_dict()))) == hints


def test_a_metric_of_another_task_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"metrics.primary: 'rmse' is not a binary metric"):
        objective_for("binary", "rmse")
    with pytest.raises(ConfigError, match=r"task: unknown task 'ranking'"):
        objective_for("ranking", "ndcg")


def test_choose_threshold_matches_a_brute_force_search() -> None:
    rng = np.random.default_rng(0)
    positive = rng.random(300) < 0.2
    score = np.clip(positive * 0.3 + rng.random(300) * 0.7, 0, 1)
    threshold, value = choose_threshold("f1", positive, score)
    brute = max(skm.f1_score(positive, score >= t) for t in np.unique(score))
    assert value == pytest.approx(brute)
    assert skm.f1_score(positive, score >= threshold) == pytest.approx(brute)
    t2, _ = choose_threshold("f2", positive, score)
    assert t2 <= threshold  # F2 leans to recall: a lower (or equal) threshold
    assert choose_threshold("f1", np.ones(5, bool), np.linspace(0, 1, 5)) == (
        0.5,
        pytest.approx(np.nan, nan_ok=True),
    )


def test_thresholded_classifier_predicts_with_its_threshold_and_keeps_probabilities() -> None:
    X, y = make_classification(n_samples=600, weights=[0.9], random_state=1)
    y = np.where(y == 1, "churn", "stay")
    base = LogisticRegression(max_iter=1000)
    model = ThresholdedClassifier(base, "f1").fit(X[:400], y[:400], eval_set=(X[400:], y[400:]))
    inner = LogisticRegression(max_iter=1000).fit(X[:400], y[:400])
    np.testing.assert_allclose(model.predict_proba(X), inner.predict_proba(X))
    assert list(model.classes_) == ["churn", "stay"]
    expected = np.where(inner.predict_proba(X)[:, 1] >= model.threshold_, "stay", "churn")
    np.testing.assert_array_equal(model.predict(X), expected)
    assert 0.0 <= model.threshold_ <= 1.0 and model.threshold_ != 0.5


def test_thresholded_classifier_holds_out_rows_without_an_eval_set() -> None:
    X, y = make_classification(n_samples=300, weights=[0.8], random_state=0)
    model = ThresholdedClassifier(LogisticRegression(), "f1", validation_fraction=0.25).fit(X, y)
    assert model.estimator_.n_features_in_ == 20
    assert np.isfinite(model.threshold_score_)
    with pytest.raises(ValueError, match="exactly two classes"):
        ThresholdedClassifier(LogisticRegression()).fit(X, np.arange(len(X)) % 3)


def _imbalanced_frame() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = make_classification(
        n_samples=1000,
        n_features=8,
        n_informative=4,
        weights=[0.94],
        flip_y=0.03,
        class_sep=0.7,
        random_state=11,
    )
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(8)]), y


@pytest.mark.parametrize("alias", ["linear", "lightgbm"])
def test_f1_hints_beat_no_hints_on_an_imbalanced_binary_task(alias: str) -> None:
    frame, y = _imbalanced_frame()
    train, val, test = slice(0, 500), slice(500, 750), slice(750, 1000)
    schema = infer_schema(frame)
    family = get_family(alias)
    scores = {}
    for primary in ("f1", "roc_auc"):  # roc_auc asks for no hint
        context = BuildContext.of(
            task="binary",
            schema=schema,
            features=list(frame.columns),
            text_column=None,
            objective=objective_for("binary", primary),
            seed=0,
        )
        model = family.build(family.defaults("binary"), context)
        fit_model(model, frame[train], y[train], eval_set=(frame[val], y[val]))
        scores[primary] = skm.f1_score(y[test], model.predict(frame[test]))
    # scored on rows used neither for fitting nor for choosing the threshold
    assert scores["f1"] > scores["roc_auc"] + 0.05, scores


def test_l1_hint_gives_median_baseline_and_a_robust_linear_model() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=600)})
    noise = np.where(rng.random(600) < 0.15, rng.exponential(40.0, 600), rng.normal(0, 1, 600))
    y = 2.0 * frame["x"].to_numpy() + noise  # skewed outliers pull the mean, not the median
    schema = infer_schema(frame)
    l1 = BuildContext(
        task="regression",
        schema=schema,
        features=("x",),
        text_column=None,
        objective=objective_for("regression", "mae"),
        seed=0,
    )
    l2 = l1.with_objective(objective_for("regression", "rmse"))
    dummy = get_family("dummy")
    med = fit_model(dummy.build({}, l1), frame, y)
    mean = fit_model(dummy.build({}, l2), frame, y)
    assert med.predict(frame[:1])[0] == pytest.approx(np.median(y))
    assert mean.predict(frame[:1])[0] == pytest.approx(np.mean(y))
    linear = get_family("linear")
    hinted = fit_model(
        linear.build({"alpha": 1e-3}, l1),
        frame[:400],
        y[:400],
    )
    plain = fit_model(
        linear.build({"alpha": 1e-3}, l2),
        frame[:400],
        y[:400],
    )
    assert type(final_model(hinted)).__name__ == "HuberRegressor"
    mae = lambda m: skm.mean_absolute_error(y[400:], m.predict(frame[400:]))  # noqa: E731
    assert mae(hinted) < mae(plain)


# scoring -------------------------------------------------------------------------------


def test_scores_match_scikit_learn_with_the_second_class_positive() -> None:
    rng = np.random.default_rng(3)
    y = rng.choice(["no", "yes"], 200, p=[0.7, 0.3])
    p_yes = np.clip((y == "yes") * 0.4 + rng.random(200) * 0.6, 0, 1)
    proba = np.column_stack([1 - p_yes, p_yes])
    pred = np.where(p_yes >= 0.5, "yes", "no")
    classes = np.array(["no", "yes"])
    positive = y == "yes"
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, pos_label="yes"),
        "recall": skm.recall_score(y, pred, pos_label="yes"),
        "f1": skm.f1_score(y, pred, pos_label="yes"),
        "roc_auc": skm.roc_auc_score(positive, p_yes),
        "pr_auc": skm.average_precision_score(positive, p_yes),
        "log_loss": skm.log_loss(y, proba, labels=classes),
        "brier": skm.brier_score_loss(positive, p_yes),
    }
    for metric, value in expected.items():
        got = score_predictions(metric, y, y_pred=pred, proba=proba, classes=classes)
        assert got == pytest.approx(value), metric


def test_regression_scores_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    y, pred = rng.normal(10, 2, 100), rng.normal(10, 2, 100)
    assert score_predictions("rmse", y, y_pred=pred) == pytest.approx(
        skm.root_mean_squared_error(y, pred)
    )
    assert score_predictions("median_ae", y, y_pred=pred) == pytest.approx(
        skm.median_absolute_error(y, pred)
    )
    assert score_predictions("r2", y, y_pred=pred) == pytest.approx(skm.r2_score(y, pred))


def test_roc_auc_ovr_survives_a_class_missing_from_validation() -> None:
    y = np.array([0, 0, 1, 1, 0, 1])
    proba = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.6, 0.3, 0.1],
            [0.2, 0.7, 0.1],
            [0.3, 0.6, 0.1],
            [0.5, 0.4, 0.1],
            [0.1, 0.8, 0.1],
        ]
    )
    value = score_predictions("roc_auc_ovr", y, proba=proba, classes=np.array([0, 1, 2]))
    assert value == pytest.approx(1.0)


def test_unknown_metric_and_missing_probabilities_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown metric 'f3'"):
        score_predictions("f3", [0, 1], y_pred=[0, 1])
    with pytest.raises(ValueError, match="'roc_auc' needs predicted probabilities"):
        score_predictions("roc_auc", [0, 1], y_pred=[0, 1])
