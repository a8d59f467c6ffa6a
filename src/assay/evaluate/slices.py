"""Metrics per slice: one row per level of each slice column, with its size.

A categorical column slices by its values; a numeric column with more than four
distinct values by its quartiles. Missing values form their own level, so every
row belongs to exactly one level and count-based metrics re-aggregate to the
global value. Levels smaller than ``min_slice_size`` are marked unreliable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from assay.config.metrics import CLASSIFICATION_TASKS, HIGHER_IS_BETTER
from assay.errors import DataError
from assay.evaluate.inputs import (
    as_array,
    as_proba,
    check_metrics,
    check_task,
    level_labels,
    resolve_classes,
)
from assay.evaluate.intervals import bootstrap_intervals
from assay.evaluate.metrics import compute_metrics

__all__ = ["SliceLevel", "SliceReport", "reaggregate", "slice_metrics"]


@dataclass(frozen=True)
class SliceLevel:
    """The metrics of one level of a slice column (``intervals``: bootstrap intervals of
    the metrics a per-slice criterion names, on reliable levels)."""

    level: str
    n: int
    metrics: dict[str, float | None]
    reliable: bool
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return {
            "level": self.level,
            "n": self.n,
            "metrics": dict(self.metrics),
            "reliable": self.reliable,
            "intervals": {k: [lo, hi] for k, (lo, hi) in self.intervals.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SliceLevel:
        """Inverse of :meth:`to_dict` (levels stored without intervals have none)."""
        intervals = {k: (float(v[0]), float(v[1])) for k, v in (data.get("intervals") or {}).items()}
        return cls(data["level"], int(data["n"]), dict(data["metrics"]), bool(data["reliable"]),
                   intervals)


@dataclass(frozen=True)
class SliceReport:
    """Every level of one slice column; ``binned`` when numeric values were cut into quartiles."""

    column: str
    binned: bool
    levels: tuple[SliceLevel, ...]

    def worst(self, metric: str, reliable_only: bool = True) -> SliceLevel | None:
        """The level with the worst value of ``metric`` (None when no level has one)."""
        candidates = [
            lv
            for lv in self.levels
            if lv.metrics.get(metric) is not None and (lv.reliable or not reliable_only)
        ]
        if not candidates:
            return None
        sign = 1.0 if HIGHER_IS_BETTER.get(metric, True) else -1.0
        return min(candidates, key=lambda lv: sign * float(lv.metrics[metric] or 0.0))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return {
            "column": self.column,
            "binned": self.binned,
            "levels": [lv.to_dict() for lv in self.levels],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SliceReport:
        """Inverse of :meth:`to_dict`."""
        return cls(
            data["column"],
            bool(data["binned"]),
            tuple(SliceLevel.from_dict(lv) for lv in data["levels"]),
        )


def slice_metrics(
    task: str,
    y_true: Any,
    y_pred: Any,
    slices: pd.DataFrame,
    proba: Any = None,
    classes: Sequence[Any] | None = None,
    metrics: Sequence[str] | None = None,
    min_slice_size: int = 30,
    interval_metrics: Sequence[str] = (),
    n_boot: int = 0,
    seed: int = 0,
) -> tuple[SliceReport, ...]:
    """The metrics of every level of every column of ``slices`` (rows aligned by position).

    ``interval_metrics`` (with ``n_boot`` resamples) get bootstrap intervals on every
    reliable level: the ones per-slice acceptance criteria are judged on.

    Raises:
        DataError: when ``slices`` does not have one row per prediction.
    """
    check_task(task)
    names = check_metrics(task, metrics)
    yt = as_array(y_true, "y_true")
    yp = as_array(y_pred, "y_pred", len(yt))
    if len(slices) != len(yt):
        raise DataError(
            "the slice columns do not have one row per prediction",
            column=", ".join(map(str, slices.columns[:5])),
            expected=f"{len(yt)} rows",
            received=f"{len(slices)} rows",
            fix="Pass the slice columns of the evaluated rows, in the same order.",
        )
    labels = resolve_classes(task, yt, yp, classes)
    pr = as_proba(proba, len(yt), len(labels)) if task in CLASSIFICATION_TASKS else None
    reports = []
    for column in slices.columns:
        levels, binned, order = level_labels(slices[column].reset_index(drop=True))
        values_of = levels.to_numpy()
        rows = []
        for level in order:
            mask = values_of == level
            n = int(mask.sum())
            values = compute_metrics(
                task,
                yt[mask],
                yp[mask],
                None if pr is None else pr[mask],
                labels or None,
                names,
            )
            intervals: dict[str, tuple[float, float]] = {}
            if interval_metrics and n_boot > 0 and n >= min_slice_size:
                intervals = bootstrap_intervals(
                    task, yt[mask], yp[mask], None if pr is None else pr[mask], labels or None,
                    list(interval_metrics), n_boot=n_boot, seed=seed,
                )
            rows.append(SliceLevel(str(level), n, values, n >= min_slice_size, intervals))
        reports.append(SliceReport(str(column), binned, tuple(rows)))
    return tuple(reports)


def reaggregate(report: SliceReport, metric: str) -> float | None:
    """The n-weighted mean of a metric over the levels (equals the global value for
    mean-based metrics such as accuracy and MAE)."""
    pairs = [
        (lv.n, lv.metrics[metric]) for lv in report.levels if lv.metrics.get(metric) is not None
    ]
    if not pairs:
        return None
    weights = np.array([n for n, _ in pairs], dtype=float)
    values = np.array([v for _, v in pairs], dtype=float)
    return float(np.dot(weights, values) / weights.sum())
