"""Which metrics each task has, which way is better, and the default primary metric."""

from __future__ import annotations

from typing import Literal

__all__ = [
    "TaskName",
    "TASK_METRICS",
    "DEFAULT_PRIMARY",
    "HIGHER_IS_BETTER",
    "CLASSIFICATION_TASKS",
    "metrics_for",
    "CLASSIFICATION_FAIRNESS_LIMITS",
    "REGRESSION_FAIRNESS_LIMITS",
    "FAIRNESS_LIMITS",
    "fairness_limits_for",
]

TaskName = Literal["binary", "multiclass", "regression", "text-classification"]

CLASSIFICATION_TASKS: frozenset[str] = frozenset({"binary", "multiclass", "text-classification"})

_BINARY = (
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
)
_MULTICLASS = (
    "accuracy",
    "balanced_accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "f1_weighted",
    "roc_auc_ovr",
    "log_loss",
)
_REGRESSION = ("mae", "rmse", "r2", "mape", "median_ae")

TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": _BINARY,
    "multiclass": _MULTICLASS,
    # text-classification reports macro metrics, which also hold for two classes
    "text-classification": _MULTICLASS,
    "regression": _REGRESSION,
}

DEFAULT_PRIMARY: dict[str, str] = {
    "binary": "roc_auc",
    "multiclass": "f1_macro",
    "text-classification": "f1_macro",
    "regression": "rmse",
}

HIGHER_IS_BETTER: dict[str, bool] = {
    **{m: True for m in _BINARY + _MULTICLASS},
    "log_loss": False,
    "brier": False,
    "mae": False,
    "rmse": False,
    "mape": False,
    "median_ae": False,
    "r2": True,
}


def metrics_for(task: str) -> tuple[str, ...]:
    """The metrics a task reports, in display order."""
    return TASK_METRICS[task]


#: fairness limits of a classifier's decisions (fairlearn's names; the ratio is the
#: "four-fifths rule" ratio of selection rates)
CLASSIFICATION_FAIRNESS_LIMITS: tuple[str, ...] = (
    "demographic_parity_difference",
    "equalized_odds_difference",
    "disparate_impact_ratio",
)
#: fairness limits of a regressor's errors: the largest gap between groups' MAE or RMSE
#: (target units) and the smallest / largest group error (1 = equal errors)
REGRESSION_FAIRNESS_LIMITS: tuple[str, ...] = (
    "mae_difference",
    "mae_ratio",
    "rmse_difference",
    "rmse_ratio",
)
#: every name assay.yaml ``fairness.limits`` accepts, for some task
FAIRNESS_LIMITS: tuple[str, ...] = CLASSIFICATION_FAIRNESS_LIMITS + REGRESSION_FAIRNESS_LIMITS


def fairness_limits_for(task: str) -> tuple[str, ...]:
    """The fairness limits a task can be checked against."""
    return CLASSIFICATION_FAIRNESS_LIMITS if task in CLASSIFICATION_TASKS else REGRESSION_FAIRNESS_LIMITS
