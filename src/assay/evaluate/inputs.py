"""Small helpers shared by the evaluation modules: input checks and JSON-safe values."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from assay.config.metrics import CLASSIFICATION_TASKS, TASK_METRICS
from assay.errors import ConfigError, DataError

__all__ = [
    "as_array",
    "as_proba",
    "check_metrics",
    "check_task",
    "is_numeric_column",
    "level_labels",
    "none_if_nan",
    "resolve_classes",
]


def check_task(task: str) -> None:
    """Raise a :class:`ConfigError` unless ``task`` is a known task name."""
    if task not in TASK_METRICS:
        raise ConfigError(
            f"unknown task '{task}'",
            key="task",
            expected="one of: " + ", ".join(TASK_METRICS),
            received=task,
            fix="Set task to one of the listed names.",
        )


def check_metrics(task: str, metrics: Sequence[str] | None, key: str = "metrics") -> list[str]:
    """The metric names to compute: all of the task's when None, else validated."""
    valid = TASK_METRICS[task]
    if metrics is None:
        return list(valid)
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in names if m not in valid]
    if unknown:
        raise ConfigError(
            f"'{unknown[0]}' is not a {task} metric",
            key=key,
            expected="one of: " + ", ".join(valid),
            received=", ".join(unknown),
            fix="Use the metric names of assay.config.metrics.TASK_METRICS.",
        )
    return names


def as_array(values: Any, name: str, n: int | None = None) -> np.ndarray:
    """A 1-D numpy array of ``values``; a :class:`DataError` if its length is not ``n``."""
    arr = np.asarray(values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else values)
    if arr.ndim != 1:
        arr = arr.reshape(len(arr), -1)
        if arr.shape[1] != 1:
            raise DataError(
                f"{name} must be one value per row",
                column=name,
                expected="a 1-D array",
                received=f"shape {arr.shape}",
                fix="Pass a single column.",
            )
        arr = arr[:, 0]
    if n is not None and len(arr) != n:
        raise DataError(
            f"{name} has a different number of rows than y_true",
            column=name,
            expected=f"{n} rows",
            received=f"{len(arr)} rows",
            fix="Pass predictions and labels for the same rows, in the same order.",
        )
    return arr


def as_proba(proba: Any, n: int, n_classes: int) -> np.ndarray | None:
    """Probabilities as an (n, n_classes) float array; a 1-D binary input is P(classes[1])."""
    if proba is None:
        return None
    arr = np.asarray(proba, dtype=float)
    if arr.ndim == 1:
        if n_classes != 2:
            raise DataError(
                "a 1-D probability vector only fits two classes",
                column="proba",
                expected=f"an array of shape ({n}, {n_classes})",
                received=f"shape {arr.shape}",
                fix="Pass the full output of predict_proba.",
            )
        arr = np.column_stack([1.0 - arr, arr])
    if arr.shape != (n, n_classes):
        raise DataError(
            "probabilities do not match the rows and classes",
            column="proba",
            expected=f"shape ({n}, {n_classes})",
            received=f"shape {arr.shape}",
            fix="Pass predict_proba's output for the same rows, columns in the order of classes.",
        )
    return arr


def resolve_classes(
    task: str, y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[Any] | None
) -> list[Any]:
    """The class labels in predict_proba's column order (inferred, sorted, when not given)."""
    if task not in CLASSIFICATION_TASKS:
        return []
    if classes is None:
        found = pd.unique(pd.Series(np.concatenate([y_true, y_pred])))
        try:
            resolved = sorted(found.tolist())
        except TypeError:
            resolved = sorted(found.tolist(), key=str)
    else:
        resolved = list(classes)
    if task == "binary" and len(resolved) != 2:
        raise DataError(
            "a binary task needs exactly two classes",
            column="classes",
            expected="2 classes",
            received=f"{len(resolved)}: {resolved[:10]}",
            fix="Use task 'multiclass', or check the target column.",
        )
    return resolved


def none_if_nan(value: Any) -> float | None:
    """``float(value)``, or None when it is missing or not finite."""
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def is_numeric_column(series: pd.Series) -> bool:
    """True for real or integer columns (booleans are categories here)."""
    return bool(pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))


MISSING_LEVEL = "(missing)"


def level_labels(series: pd.Series, n_bins: int = 4) -> tuple[pd.Series, bool, list[str]]:
    """Each row's level as text; numeric columns with many values are cut into quantile bins.

    Returns the labels (missing values become ``"(missing)"``), whether the column was
    binned, and the levels in display order (bins in ascending order, missing last).
    """
    binned = is_numeric_column(series) and series.nunique(dropna=True) > n_bins
    if binned:
        values = series.astype(float)
        try:
            cut = pd.qcut(values, q=n_bins, duplicates="drop")
        except ValueError:
            # pandas' label formatting fails on subnormal edges; bin on rounded edges instead
            edges = np.unique(np.round(np.nanquantile(values, np.linspace(0, 1, n_bins + 1)), 12))
            cut = pd.cut(values, bins=edges, include_lowest=True, duplicates="drop")
        labels = cut.astype(str).where(cut.notna(), MISSING_LEVEL)
        order = [str(c) for c in cut.cat.categories]
    else:
        labels = series.astype(object).map(lambda v: MISSING_LEVEL if pd.isna(v) else str(v))
        order = sorted(set(labels) - {MISSING_LEVEL})
    out = pd.Series(labels.to_numpy(dtype=object), index=series.index, name=series.name)
    present = set(out)
    order = [lv for lv in order if lv in present]
    if MISSING_LEVEL in present:
        order.append(MISSING_LEVEL)
    return out, binned, order
