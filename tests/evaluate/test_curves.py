"""Curves for the report: confusion, ROC, PR, calibration and regression residuals."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix, roc_auc_score

from assay.evaluate import (
    Curves,
    build_curves,
    compute_confusion,
    expected_calibration_error,
)
from assay.evaluate.curves import MAX_POINTS, downsample


def test_confusion_matrix_equals_sklearn_in_class_order(multiclass_predictions) -> None:
    p = multiclass_predictions
    got = compute_confusion(p["y_true"], p["y_pred"], p["classes"])
    assert got.labels == ("cat", "dog", "eel")
    expected = confusion_matrix(p["y_true"], p["y_pred"], labels=p["classes"])
    assert np.array_equal(np.array(got.matrix), expected)


def test_confusion_matrix_keeps_unknown_labels() -> None:
    got = compute_confusion([1, 2, 3], [1, 2, 2], [1, 2])
    assert got.labels == (1, 2, 3)
    assert got.matrix[2] == (0, 1, 0)
    assert all(type(v) is int for v in got.labels)


def test_binary_roc_and_pr_curves(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 5000
    y = rng.integers(0, 2, n)
    score = np.clip(0.3 * y + rng.normal(0.35, 0.2, n), 0, 1)
    curves = build_curves("binary", y, (score > 0.5).astype(int), score, [0, 1])
    (roc,) = curves.roc
    (pr,) = curves.pr
    assert roc.label == 1 and pr.label == 1
    assert 2 < len(roc.x) <= MAX_POINTS and len(pr.x) <= MAX_POINTS
    assert (roc.x[0], roc.y[0]) == (0.0, 0.0)
    assert (roc.x[-1], roc.y[-1]) == (1.0, 1.0)
    assert np.all(np.diff(roc.x) >= 0)
    assert np.trapezoid(roc.y, roc.x) == pytest.approx(roc_auc_score(y, score), abs=0.01)
    assert min(pr.x) == 0.0 and max(pr.x) == 1.0  # recall spans [0, 1]


def test_multiclass_curves_are_one_vs_rest(multiclass_predictions) -> None:
    p = multiclass_predictions
    curves = build_curves("multiclass", p["y_true"], p["y_pred"], p["proba"], p["classes"])
    assert [c.label for c in curves.roc] == ["cat", "dog", "eel"]
    assert curves.calibration is not None and curves.calibration.kind == "top_label"


def test_calibration_matches_sklearn_and_ece(binary_predictions) -> None:
    p = binary_predictions
    curves = build_curves("binary", p["y_true"], p["y_pred"], p["proba"], p["classes"])
    positive = p["y_true"] == "yes"
    frac, mean = calibration_curve(positive, p["proba"][:, 1], n_bins=10)
    cal = curves.calibration
    assert cal is not None
    assert np.allclose(cal.fraction_positive, frac)
    assert np.allclose(cal.mean_predicted, mean)
    assert sum(cal.counts) == len(positive)
    expected_ece = np.sum(np.array(cal.counts) * np.abs(frac - mean)) / len(positive)
    assert cal.ece == pytest.approx(expected_ece)


def test_ece_known_answers() -> None:
    # every row predicted 0.8, observed frequency 0.5: the gap is 0.3
    assert expected_calibration_error(np.array([1, 0, 1, 0]), np.full(4, 0.8)) == pytest.approx(0.3)
    # each bin's mean prediction equals its observed frequency
    prob = np.array([0.25, 0.25, 0.25, 0.25, 0.75, 0.75, 0.75, 0.75])
    outcome = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    assert expected_calibration_error(outcome, prob) == pytest.approx(0.0)


def test_regression_residuals_and_scatter_sample(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=2000)
    pred = y + 0.5
    curves = build_curves("regression", y, pred, seed=seed)
    assert curves.roc == () and curves.calibration is None
    assert curves.residuals is not None
    assert curves.residuals.mean == pytest.approx(0.5)
    assert curves.residuals.quantiles["p50"] == pytest.approx(0.5)
    assert curves.residuals.std == pytest.approx(0.0, abs=1e-9)
    scatter = curves.predicted_vs_actual
    assert scatter is not None and len(scatter.x) == 500
    assert np.allclose(np.array(scatter.y) - np.array(scatter.x), 0.5)


def test_downsample_keeps_ends() -> None:
    x = np.arange(1000.0)
    dx, dy = downsample(x, x * 2)
    assert len(dx) <= MAX_POINTS and dx[0] == 0 and dx[-1] == 999
    assert np.array_equal(dy, dx * 2)


def test_curves_round_trip(multiclass_predictions) -> None:
    p = multiclass_predictions
    curves = build_curves("multiclass", p["y_true"], p["y_pred"], p["proba"], p["classes"])
    assert Curves.from_dict(curves.to_dict()) == curves
