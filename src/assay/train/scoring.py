"""Scoring predictions with the metrics of :mod:`assay.config.metrics`, via scikit-learn.

The positive class of a binary task is the second of the sorted classes (the
scikit-learn convention, ``classes_[1]``). Two extra loss names, ``mse`` and
``mae``, score learning curves of regression models.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as skm

from assay.config.metrics import HIGHER_IS_BETTER

__all__ = ["PROBABILITY_METRICS", "score_estimator", "score_predictions"]

#: metrics computed from predicted probabilities rather than labels
PROBABILITY_METRICS: frozenset[str] = frozenset(
    {"roc_auc", "pr_auc", "log_loss", "brier", "roc_auc_ovr"}
)


def score_predictions(
    metric: str,
    y_true: Any,
    *,
    y_pred: Any = None,
    proba: Any = None,
    classes: Any = None,
    sample_weight: Any = None,
) -> float:
    """The value of ``metric`` for these labels/probabilities (``classes`` orders proba columns)."""
    y = np.asarray(y_true)
    w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
    if metric in PROBABILITY_METRICS:
        if proba is None or classes is None:
            raise ValueError(f"metric '{metric}' needs predicted probabilities and classes")
        return _probability_metric(
            metric, y, np.asarray(proba, dtype=float), np.asarray(classes), w
        )
    if y_pred is None:
        raise ValueError(f"metric '{metric}' needs predicted labels or values")
    pred = np.asarray(y_pred)
    if metric in ("mae", "rmse", "r2", "mape", "median_ae", "mse"):
        return _regression_metric(metric, y.astype(float), pred.astype(float), w)
    pos = np.asarray(classes)[-1] if classes is not None else np.unique(y)[-1]
    simple: dict[str, Any] = {
        "accuracy": lambda: skm.accuracy_score(y, pred, sample_weight=w),
        "balanced_accuracy": lambda: skm.balanced_accuracy_score(y, pred, sample_weight=w),
        "precision": lambda: skm.precision_score(
            y, pred, pos_label=pos, zero_division=0, sample_weight=w
        ),
        "recall": lambda: skm.recall_score(
            y, pred, pos_label=pos, zero_division=0, sample_weight=w
        ),
        "f1": lambda: skm.f1_score(y, pred, pos_label=pos, zero_division=0, sample_weight=w),
        "precision_macro": lambda: skm.precision_score(
            y, pred, average="macro", zero_division=0, sample_weight=w
        ),
        "recall_macro": lambda: skm.recall_score(
            y, pred, average="macro", zero_division=0, sample_weight=w
        ),
        "f1_macro": lambda: skm.f1_score(
            y, pred, average="macro", zero_division=0, sample_weight=w
        ),
        "f1_weighted": lambda: skm.f1_score(
            y, pred, average="weighted", zero_division=0, sample_weight=w
        ),
    }
    if metric not in simple:
        raise ValueError(f"unknown metric '{metric}'; known: {', '.join(sorted(HIGHER_IS_BETTER))}")
    return float(simple[metric]())


def _regression_metric(metric: str, y: np.ndarray, pred: np.ndarray, w: Any) -> float:
    if metric == "mae":
        return float(skm.mean_absolute_error(y, pred, sample_weight=w))
    if metric == "mse":
        return float(skm.mean_squared_error(y, pred, sample_weight=w))
    if metric == "rmse":
        return float(skm.root_mean_squared_error(y, pred, sample_weight=w))
    if metric == "r2":
        return float(skm.r2_score(y, pred, sample_weight=w))
    if metric == "mape":
        return float(skm.mean_absolute_percentage_error(y, pred, sample_weight=w))
    return float(skm.median_absolute_error(y, pred, sample_weight=w))


def _probability_metric(
    metric: str, y: np.ndarray, proba: np.ndarray, classes: np.ndarray, w: Any
) -> float:
    if proba.ndim == 1:
        proba = np.column_stack([1.0 - proba, proba])
    if metric == "log_loss":
        return float(skm.log_loss(y, proba, labels=classes, sample_weight=w))
    if metric == "roc_auc_ovr":
        # macro one-vs-rest over the classes present with both outcomes, so a class
        # absent from a small validation set does not make the metric undefined
        scores = []
        for k, cls in enumerate(classes):
            hit = y == cls
            if hit.any() and (~hit).any():
                scores.append(skm.roc_auc_score(hit, proba[:, k], sample_weight=w))
        return float(np.mean(scores)) if scores else float("nan")
    positive = y == classes[-1]
    if metric == "brier":
        return float(skm.brier_score_loss(positive, proba[:, -1], sample_weight=w))
    if positive.all() or not positive.any():
        return float("nan")
    if metric == "roc_auc":
        return float(skm.roc_auc_score(positive, proba[:, -1], sample_weight=w))
    return float(skm.average_precision_score(positive, proba[:, -1], sample_weight=w))


def score_estimator(
    metric: str, estimator: Any, X: Any, y: Any, *, sample_weight: Any = None
) -> float:
    """Score a fitted estimator on ``X``, ``y`` (probabilities when the metric needs them)."""
    if metric in PROBABILITY_METRICS:
        return score_predictions(
            metric,
            y,
            proba=estimator.predict_proba(X),
            classes=estimator.classes_,
            sample_weight=sample_weight,
        )
    return score_predictions(
        metric,
        y,
        y_pred=estimator.predict(X),
        classes=getattr(estimator, "classes_", None),
        sample_weight=sample_weight,
    )
