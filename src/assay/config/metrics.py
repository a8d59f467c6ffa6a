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
