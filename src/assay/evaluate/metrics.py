"""Every metric of a task, computed by scikit-learn on one set of predictions.

Names follow :data:`assay.config.metrics.TASK_METRICS`. A metric that is not
defined on the rows given (ROC AUC with one class present, MAPE with a zero
target, a probability metric without probabilities) is ``None``, never an error.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm

from assay.config.metrics import CLASSIFICATION_TASKS
from assay.evaluate.inputs import (
    as_array,
    as_proba,
    check_metrics,
    check_task,
    none_if_nan,
    resolve_classes,
)

__all__ = ["PROBA_METRICS", "compute_metrics", "metric_value"]

#: metrics that need predicted probabilities
PROBA_METRICS: frozenset[str] = frozenset({"roc_auc", "pr_auc", "log_loss", "brier", "roc_auc_ovr"})


def compute_metrics(
    task: str,
    y_true: Any,
    y_pred: Any,
    proba: Any = None,
    classes: Sequence[Any] | None = None,
    metrics: Sequence[str] | None = None,
) -> dict[str, float | None]:
    """Every metric of ``task`` (or only ``metrics``) on these predictions.

    Args:
        task: binary, multiclass, text-classification or regression.
        y_true: the labels (or targets).
        y_pred: the predicted labels (or values).
        proba: ``predict_proba`` output, columns in the order of ``classes``; for
            binary a 1-D array is read as the probability of ``classes[1]``.
        classes: the model's ``classes_``; for binary ``classes[1]`` is the positive
            class. Inferred (sorted labels) when None.
        metrics: a subset of the task's metric names; all when None.

    Returns:
        metric name -> value, ``None`` where the metric is undefined on these rows.
    """
    check_task(task)
    names = check_metrics(task, metrics)
    yt = as_array(y_true, "y_true")
    yp = as_array(y_pred, "y_pred", len(yt))
    labels = resolve_classes(task, yt, yp, classes)
    pr = as_proba(proba, len(yt), len(labels)) if task in CLASSIFICATION_TASKS else None
    return {name: _safe(_METRICS[task][name], yt, yp, pr, labels) for name in names}


def metric_value(
    task: str,
    metric: str,
    y_true: Any,
    y_pred: Any,
    proba: Any = None,
    classes: Sequence[Any] | None = None,
) -> float | None:
    """One metric of ``task``; ``None`` where undefined (see :func:`compute_metrics`)."""
    return compute_metrics(task, y_true, y_pred, proba, classes, metrics=[metric])[metric]


_Fn = Callable[[np.ndarray, np.ndarray, "np.ndarray | None", list[Any]], Any]


def _safe(
    fn: _Fn, yt: np.ndarray, yp: np.ndarray, pr: np.ndarray | None, labels: list[Any]
) -> float | None:
    if len(yt) == 0:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return none_if_nan(fn(yt, yp, pr, labels))
        except (ValueError, TypeError, ZeroDivisionError):
            return None


def _needs_proba(fn: Callable[[np.ndarray, np.ndarray, np.ndarray, list[Any]], Any]) -> _Fn:
    def wrapped(yt: np.ndarray, yp: np.ndarray, pr: np.ndarray | None, labels: list[Any]) -> Any:
        return None if pr is None else fn(yt, yp, pr, labels)

    return wrapped


def _both_classes(positive: np.ndarray) -> bool:
    return bool(positive.any() and not positive.all())


def _roc_auc(yt: np.ndarray, yp: np.ndarray, pr: np.ndarray, labels: list[Any]) -> float | None:
    positive = yt == labels[1]
    if not _both_classes(positive):
        return None
    return float(skm.roc_auc_score(positive, pr[:, 1]))


def _pr_auc(yt: np.ndarray, yp: np.ndarray, pr: np.ndarray, labels: list[Any]) -> float | None:
    positive = yt == labels[1]
    if not positive.any():
        return None
    return float(skm.average_precision_score(positive, pr[:, 1]))


def _roc_auc_ovr(yt: np.ndarray, yp: np.ndarray, pr: np.ndarray, labels: list[Any]) -> float | None:
    if len(labels) == 2:
        return _roc_auc(yt, yp, pr, labels)
    return float(skm.roc_auc_score(yt, pr, multi_class="ovr", average="macro", labels=labels))


def _log_loss(yt: np.ndarray, yp: np.ndarray, pr: np.ndarray, labels: list[Any]) -> float:
    return float(skm.log_loss(yt, pr, labels=labels))


def _brier(yt: np.ndarray, yp: np.ndarray, pr: np.ndarray, labels: list[Any]) -> float:
    return float(skm.brier_score_loss(yt == labels[1], pr[:, 1], pos_label=True))


def _binary(fn: Callable[..., Any]) -> _Fn:
    return lambda yt, yp, pr, labels: fn(yt, yp, pos_label=labels[1], zero_division=0)


def _averaged(fn: Callable[..., Any], average: str) -> _Fn:
    return lambda yt, yp, pr, labels: fn(yt, yp, average=average, zero_division=0)


def _plain(fn: Callable[[np.ndarray, np.ndarray], Any]) -> _Fn:
    return lambda yt, yp, pr, labels: fn(yt, yp)


def _mape(yt: np.ndarray, yp: np.ndarray, pr: Any, labels: list[Any]) -> float | None:
    yt = yt.astype(float)
    if np.any(yt == 0):
        return None
    return float(skm.mean_absolute_percentage_error(yt, yp.astype(float)))


def _r2(yt: np.ndarray, yp: np.ndarray, pr: Any, labels: list[Any]) -> float | None:
    if len(yt) < 2:
        return None
    return float(skm.r2_score(yt.astype(float), yp.astype(float)))


def _float_plain(fn: Callable[[np.ndarray, np.ndarray], Any]) -> _Fn:
    return lambda yt, yp, pr, labels: fn(yt.astype(float), yp.astype(float))


_MULTICLASS: dict[str, _Fn] = {
    "accuracy": _plain(skm.accuracy_score),
    "balanced_accuracy": _plain(skm.balanced_accuracy_score),
    "precision_macro": _averaged(skm.precision_score, "macro"),
    "recall_macro": _averaged(skm.recall_score, "macro"),
    "f1_macro": _averaged(skm.f1_score, "macro"),
    "f1_weighted": _averaged(skm.f1_score, "weighted"),
    "roc_auc_ovr": _needs_proba(_roc_auc_ovr),
    "log_loss": _needs_proba(_log_loss),
}

_METRICS: dict[str, dict[str, _Fn]] = {
    "binary": {
        "accuracy": _plain(skm.accuracy_score),
        "balanced_accuracy": _plain(skm.balanced_accuracy_score),
        "precision": _binary(skm.precision_score),
        "recall": _binary(skm.recall_score),
        "f1": _binary(skm.f1_score),
        "roc_auc": _needs_proba(_roc_auc),
        "pr_auc": _needs_proba(_pr_auc),
        "log_loss": _needs_proba(_log_loss),
        "brier": _needs_proba(_brier),
    },
    "multiclass": _MULTICLASS,
    "text-classification": _MULTICLASS,
    "regression": {
        "mae": _float_plain(skm.mean_absolute_error),
        "rmse": _float_plain(skm.root_mean_squared_error),
        "r2": _r2,
        "mape": _mape,
        "median_ae": _float_plain(skm.median_absolute_error),
    },
}
