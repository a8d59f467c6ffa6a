"""Group fairness of a model's decisions or errors, computed with fairlearn.

For each protected attribute: the demographic-parity difference (largest gap in
selection rate between groups), the equalized-odds difference (largest gap in true-
or false-positive rate) and the disparate-impact ratio (smallest / largest selection
rate; the "four-fifths rule" asks for >= 0.8). A selection is a prediction of the
positive class (``classes[1]``). With more than two classes each class is treated
one-vs-rest and the headline numbers are those of the worst class. Numeric
attributes are cut into quartiles, as slices are.

For regression the groups are compared on their errors: per-group MAE and RMSE
(fairlearn ``MetricFrame``), the largest gap between two groups (``mae_difference``,
``rmse_difference``, in target units) and the smallest group error over the largest
(``mae_ratio``, ``rmse_ratio``; 1 is equal errors).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import mean_absolute_error, root_mean_squared_error

from assay.config.metrics import CLASSIFICATION_TASKS, FAIRNESS_LIMITS
from assay.data.values import native
from assay.errors import DataError
from assay.evaluate.inputs import (
    as_array,
    check_task,
    level_labels,
    none_if_nan,
    resolve_classes,
)

__all__ = ["FAIRNESS_METRICS", "ClassFairness", "FairnessResult", "GroupRates", "fairness_metrics"]

#: the limit names of assay.yaml ``fairness.limits`` (every task's)
FAIRNESS_METRICS: tuple[str, ...] = FAIRNESS_LIMITS


@dataclass(frozen=True)
class GroupRates:
    """One group of a protected attribute: its size and decision rates (classification)
    or errors (regression)."""

    group: str
    n: int
    selection_rate: float | None
    true_positive_rate: float | None
    false_positive_rate: float | None
    reliable: bool = True
    mae: float | None = None
    rmse: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroupRates:
        """Inverse of :meth:`to_dict` (records stored before the error fields load too)."""
        return cls(**data)


@dataclass(frozen=True)
class ClassFairness:
    """The fairness numbers of one class taken one-vs-rest (tasks with more than two classes)."""

    label: Any
    demographic_parity_difference: float | None
    equalized_odds_difference: float | None
    disparate_impact_ratio: float | None
    groups: tuple[GroupRates, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return {
            "label": self.label,
            "demographic_parity_difference": self.demographic_parity_difference,
            "equalized_odds_difference": self.equalized_odds_difference,
            "disparate_impact_ratio": self.disparate_impact_ratio,
            "groups": [g.to_dict() for g in self.groups],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassFairness:
        """Inverse of :meth:`to_dict`."""
        return cls(
            data["label"],
            data["demographic_parity_difference"],
            data["equalized_odds_difference"],
            data["disparate_impact_ratio"],
            tuple(GroupRates.from_dict(g) for g in data["groups"]),
        )


@dataclass(frozen=True)
class FairnessResult:
    """The fairness of the decisions with respect to one protected attribute."""

    attribute: str
    positive_label: Any
    demographic_parity_difference: float | None
    equalized_odds_difference: float | None
    disparate_impact_ratio: float | None
    groups: tuple[GroupRates, ...]
    per_class: tuple[ClassFairness, ...] = ()
    note: str = ""
    mae_difference: float | None = None
    mae_ratio: float | None = None
    rmse_difference: float | None = None
    rmse_ratio: float | None = None

    def value(self, name: str) -> float | None:
        """The headline value of a limit name (see :data:`FAIRNESS_METRICS`)."""
        if name not in FAIRNESS_METRICS:
            raise KeyError(name)
        return getattr(self, name)  # type: ignore[no-any-return]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return {
            "attribute": self.attribute,
            "positive_label": self.positive_label,
            "demographic_parity_difference": self.demographic_parity_difference,
            "equalized_odds_difference": self.equalized_odds_difference,
            "disparate_impact_ratio": self.disparate_impact_ratio,
            "groups": [g.to_dict() for g in self.groups],
            "per_class": [c.to_dict() for c in self.per_class],
            "note": self.note,
            "mae_difference": self.mae_difference,
            "mae_ratio": self.mae_ratio,
            "rmse_difference": self.rmse_difference,
            "rmse_ratio": self.rmse_ratio,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FairnessResult:
        """Inverse of :meth:`to_dict`."""
        return cls(
            attribute=data["attribute"],
            positive_label=data.get("positive_label"),
            demographic_parity_difference=data.get("demographic_parity_difference"),
            equalized_odds_difference=data.get("equalized_odds_difference"),
            disparate_impact_ratio=data.get("disparate_impact_ratio"),
            groups=tuple(GroupRates.from_dict(g) for g in data["groups"]),
            per_class=tuple(ClassFairness.from_dict(c) for c in data.get("per_class", [])),
            note=data.get("note", ""),
            mae_difference=data.get("mae_difference"),
            mae_ratio=data.get("mae_ratio"),
            rmse_difference=data.get("rmse_difference"),
            rmse_ratio=data.get("rmse_ratio"),
        )


def fairness_metrics(
    task: str,
    y_true: Any,
    y_pred: Any,
    protected: pd.DataFrame,
    classes: Sequence[Any] | None = None,
    min_group_size: int = 30,
) -> tuple[FairnessResult, ...]:
    """Fairness per column of ``protected`` (rows aligned by position).

    Raises:
        DataError: when ``protected`` does not have one row per prediction.
    """
    check_task(task)
    yt = as_array(y_true, "y_true")
    yp = as_array(y_pred, "y_pred", len(yt))
    if len(protected) != len(yt):
        raise DataError(
            "the protected attributes do not have one row per prediction",
            column=", ".join(map(str, protected.columns[:5])),
            expected=f"{len(yt)} rows",
            received=f"{len(protected)} rows",
            fix="Pass the protected columns of the evaluated rows, in the same order.",
        )
    if task not in CLASSIFICATION_TASKS:
        return tuple(
            _regression_fairness(
                str(column), yt, yp,
                level_labels(protected[column].reset_index(drop=True))[0].to_numpy(),
                min_group_size,
            )
            for column in protected.columns
        )
    labels = resolve_classes(task, yt, yp, classes)
    results = []
    for column in protected.columns:
        groups, _, _ = level_labels(protected[column].reset_index(drop=True))
        sf = groups.to_numpy()
        if len(labels) == 2:
            pos = labels[1]
            dpd, eod, di, rates = _binary_fairness(yt == pos, yp == pos, sf, min_group_size)
            results.append(FairnessResult(str(column), native(pos, iso_timestamps=True), dpd, eod, di, rates))
            continue
        per_class = []
        for label in labels:
            dpd, eod, di, rates = _binary_fairness(yt == label, yp == label, sf, min_group_size)
            per_class.append(ClassFairness(native(label, iso_timestamps=True), dpd, eod, di, rates))
        results.append(
            FairnessResult(
                attribute=str(column),
                positive_label=None,
                demographic_parity_difference=_worst(
                    [c.demographic_parity_difference for c in per_class], max
                ),
                equalized_odds_difference=_worst(
                    [c.equalized_odds_difference for c in per_class], max
                ),
                disparate_impact_ratio=_worst([c.disparate_impact_ratio for c in per_class], min),
                groups=(),
                per_class=tuple(per_class),
                note="more than two classes: each class one-vs-rest; headline values are the "
                "worst class",
            )
        )
    return tuple(results)


def _regression_fairness(
    attribute: str, y_true: np.ndarray, y_pred: np.ndarray, sf: np.ndarray, min_group_size: int
) -> FairnessResult:
    """Per-group MAE and RMSE, their largest gap and their smallest / largest ratio."""
    yt = np.asarray(y_true, dtype=float)
    yp = np.asarray(y_pred, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = MetricFrame(
            metrics={"mae": mean_absolute_error, "rmse": root_mean_squared_error, "count": count},
            y_true=yt,
            y_pred=yp,
            sensitive_features=pd.Series(sf, name="group"),
        )
        difference = frame.difference(method="between_groups")
        ratio = frame.ratio(method="between_groups")
    groups = tuple(
        GroupRates(
            group=str(group),
            n=int(row["count"]),
            selection_rate=None,
            true_positive_rate=None,
            false_positive_rate=None,
            reliable=int(row["count"]) >= min_group_size,
            mae=none_if_nan(row["mae"]),
            rmse=none_if_nan(row["rmse"]),
        )
        for group, row in frame.by_group.iterrows()
    )
    return FairnessResult(
        attribute=attribute,
        positive_label=None,
        demographic_parity_difference=None,
        equalized_odds_difference=None,
        disparate_impact_ratio=None,
        groups=groups,
        note="regression: the groups are compared on their errors (MAE, RMSE)",
        mae_difference=none_if_nan(difference["mae"]),
        mae_ratio=none_if_nan(ratio["mae"]),
        rmse_difference=none_if_nan(difference["rmse"]),
        rmse_ratio=none_if_nan(ratio["rmse"]),
    )


def _worst(values: list[float | None], pick: Any) -> float | None:
    present = [v for v in values if v is not None]
    return pick(present) if present else None


def _binary_fairness(
    positive: np.ndarray, selected: np.ndarray, sf: np.ndarray, min_group_size: int
) -> tuple[float | None, float | None, float | None, tuple[GroupRates, ...]]:
    yt = positive.astype(int)
    yp = selected.astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dpd = none_if_nan(demographic_parity_difference(yt, yp, sensitive_features=sf))
        eod = none_if_nan(equalized_odds_difference(yt, yp, sensitive_features=sf))
        frame = MetricFrame(
            metrics={
                "selection_rate": selection_rate,
                "true_positive_rate": true_positive_rate,
                "false_positive_rate": false_positive_rate,
                "count": count,
            },
            y_true=yt,
            y_pred=yp,
            sensitive_features=pd.Series(sf, name="group"),
        )
    by_group = frame.by_group
    rates = tuple(
        GroupRates(
            group=str(group),
            n=int(row["count"]),
            selection_rate=none_if_nan(row["selection_rate"]),
            true_positive_rate=none_if_nan(row["true_positive_rate"]),
            false_positive_rate=none_if_nan(row["false_positive_rate"]),
            reliable=int(row["count"]) >= min_group_size,
        )
        for group, row in by_group.iterrows()
    )
    selection = [r.selection_rate for r in rates if r.selection_rate is not None]
    di = None
    if selection and max(selection) > 0:
        di = float(min(selection) / max(selection))
    return dpd, eod, di, rates
