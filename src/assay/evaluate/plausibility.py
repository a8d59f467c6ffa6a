"""Results too good to be true: the tell-tale signs of a leak on the sealed test rows.

Real outcomes are noisy. A classifier that makes no error at all on a non-trivial
test set, that makes many errors of one kind and none of the other, or that scores
far above its own cross-validation has usually been handed the answer: a field
recorded after the outcome, filled in for part of the rows. Each sign is a
:class:`PlausibilitySignal`:

* ``perfect`` — every one of at least :data:`MIN_ROWS` test rows right;
* ``no_errors`` — every one of at least :data:`MIN_ROWS` rows predicted as a class
  is of that class (its precision is 1; for the negative class of a binary task,
  the positive class's recall is 1) while the model misses ``E`` rows of it: zero
  errors of one kind among ``E`` errors is implausible when a share of at least
  :data:`NULL_ERROR_SHARE` of them would be expected of that kind
  (``(1 - share) ** E < ALPHA``, so ``E >= 17``). A class that is most of the rows
  (over :data:`MAX_BASE_RATE`) is left out: a cautious model predicts it cleanly;
* ``above_cv`` — the primary metric on the test rows far above every
  cross-validation fold (more than 3 standard deviations and 0.05 above the mean
  for a score; a quarter below the mean for an error measure).

When a sign shows, the report names what explains it: the features whose absence
costs the model most on the test rows (robustness's ``missing:<feature>`` cases,
worst first) and the pure regions of the test rows (:mod:`assay.data.purity`),
those of the costliest features first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from assay.config.metrics import CLASSIFICATION_TASKS, HIGHER_IS_BETTER
from assay.data.purity import PureRegion, find_pure_regions
from assay.data.values import label_text
from assay.evaluate.curves import ConfusionMatrix
from assay.evaluate.robustness import RobustnessReport

__all__ = [
    "FeatureCost",
    "PlausibilityReport",
    "PlausibilitySignal",
    "check_plausibility",
]

#: test rows (or predicted / actual rows of a class) below which perfection is unremarkable
MIN_ROWS = 30
#: the share of a model's errors expected of either kind when neither kind is impossible
NULL_ERROR_SHARE = 0.25
#: zero errors of one kind is implausible below this probability
ALPHA = 0.01
#: a class holding more than this share of the test rows is predicted without a false
#: positive by any cautious model: its precision of 1 says nothing
MAX_BASE_RATE = 0.5
#: the test metric is far above cross-validation: this many fold standard deviations ...
CV_SIGMAS = 3.0
#: ... and at least this much for a score in [0, 1] ...
CV_MARGIN = 0.05
#: ... or this relative reduction of an error measure
CV_RELATIVE = 0.25
#: features and regions kept as the explanation
MAX_SUSPECTS = 3

SignalKind = Literal["perfect", "no_errors", "above_cv"]


@dataclass(frozen=True)
class PlausibilitySignal:
    """One sign that the test results are too good to be true.

    ``metric`` and ``value`` are the measured number (e.g. ``precision['1']`` and 1.0),
    ``rows`` the rows it holds on, ``reference`` what it is compared with (the
    cross-validation mean, or the errors of the other kind), and ``p_value`` the
    chance of the sign under the null described in the module docstring.
    """

    kind: SignalKind
    message: str
    metric: str
    value: float
    rows: int
    reference: float | None = None
    p_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlausibilitySignal:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


@dataclass(frozen=True)
class FeatureCost:
    """What removing one feature from every test row costs (robustness's ``missing`` case)."""

    feature: str
    drop: float
    relative_drop: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureCost:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


@dataclass(frozen=True)
class PlausibilityReport:
    """The signs of a too-good result on the test rows and the features that explain them.

    ``suspects`` and ``regions`` are filled only when a sign shows.
    """

    n_rows: int
    signals: tuple[PlausibilitySignal, ...] = ()
    suspects: tuple[FeatureCost, ...] = ()
    regions: tuple[PureRegion, ...] = ()
    metric: str = ""

    @property
    def plausible(self) -> bool:
        """True when no sign shows."""
        return not self.signals

    @property
    def suspect_features(self) -> tuple[str, ...]:
        """The features that explain the signs: those of pure regions, then the costliest."""
        names = [r.feature for r in self.regions] + [s.feature for s in self.suspects]
        return tuple(dict.fromkeys(names))

    def summary(self) -> str:
        """The signs and their explanation in one paragraph."""
        if self.plausible:
            return f"no sign of a leak on {self.n_rows:,} test rows"
        parts = [s.message for s in self.signals]
        if self.suspects:
            costs = ", ".join(_cost_text(c, self.metric) for c in self.suspects)
            parts.append(f"the model leans on: {costs}")
        if self.regions:
            shown = "; ".join(r.describe() for r in self.regions)
            parts.append(f"pure regions of the test rows: {shown}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return {
            "n_rows": self.n_rows,
            "signals": [s.to_dict() for s in self.signals],
            "suspects": [s.to_dict() for s in self.suspects],
            "regions": [r.to_dict() for r in self.regions],
            "metric": self.metric,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlausibilityReport:
        """Inverse of :meth:`to_dict`."""
        return cls(
            n_rows=int(data["n_rows"]),
            signals=tuple(PlausibilitySignal.from_dict(s) for s in data.get("signals", [])),
            suspects=tuple(FeatureCost.from_dict(s) for s in data.get("suspects", [])),
            regions=tuple(PureRegion.from_dict(r) for r in data.get("regions", [])),
            metric=str(data.get("metric", "")),
        )


def check_plausibility(
    task: str,
    y: np.ndarray,
    confusion: ConfusionMatrix | None,
    *,
    primary: str,
    test_value: float | None,
    cv_scores: Sequence[float] | None = None,
    robustness: RobustnessReport | None = None,
    X: pd.DataFrame | None = None,
    positive: Any = None,
    text_columns: Sequence[str] = (),
    intervals: Mapping[str, tuple[float, float]] | None = None,
) -> PlausibilityReport:
    """The signs of a too-good result, and when one shows, the features behind it.

    Args:
        task: the task name.
        y: the test labels (aligned with ``X``).
        confusion: the confusion matrix of the test predictions (classification).
        primary, test_value: the primary metric and its value on the test rows.
        cv_scores: the primary metric on each cross-validation fold.
        robustness: the robustness report (its ``missing:<feature>`` cases).
        X: the test features, searched for pure regions when a sign shows.
        positive: the positive class of a binary task, whose precision and recall the
            signs name (default: the second class, as the metrics take it).
        text_columns: free-text columns, not searched for regions.
        intervals: the bootstrap intervals of the metrics, quoted for a binary task's
            precision and recall.
    """
    signals: list[PlausibilitySignal] = []
    if task in CLASSIFICATION_TASKS and confusion is not None:
        signals.extend(_confusion_signals(confusion, positive, intervals or {}))
    above = _above_cv(primary, test_value, cv_scores, len(y))
    if above is not None:
        signals.append(above)
    if not signals:
        return PlausibilityReport(n_rows=len(y), metric=primary)
    suspects = _suspects(robustness)
    regions: tuple[PureRegion, ...] = ()
    if X is not None and task in CLASSIFICATION_TASKS:
        order = [s.feature for s in suspects] + [c for c in X.columns if c not in text_columns]
        regions = _regions(X, y, list(dict.fromkeys(c for c in order if c in X.columns)))
    return PlausibilityReport(
        n_rows=len(y), signals=tuple(signals), suspects=suspects, regions=regions, metric=primary
    )


def _confusion_signals(
    confusion: ConfusionMatrix, positive: Any, intervals: Mapping[str, tuple[float, float]]
) -> list[PlausibilitySignal]:
    matrix = np.asarray(confusion.matrix, dtype=np.int64)
    labels = [label_text(c) for c in confusion.labels]
    n = int(matrix.sum())
    errors = n - int(np.trace(matrix))
    if n >= MIN_ROWS and errors == 0:
        return [
            PlausibilitySignal(
                "perfect",
                f"every one of the {n:,} test rows is predicted right",
                "accuracy", 1.0, n,
            )
        ]
    pos = labels.index(label_text(positive)) if positive is not None else 1
    out: list[PlausibilitySignal] = []
    for c, name in enumerate(labels):
        predicted = int(matrix[:, c].sum())
        actual = int(matrix[c, :].sum())
        wrong = predicted - int(matrix[c, c])  # predicted c, but another class
        missed = actual - int(matrix[c, c])  # a c row predicted as another class
        if predicted < MIN_ROWS or wrong != 0 or missed == 0 or actual > MAX_BASE_RATE * n:
            continue
        p_value = (1.0 - NULL_ERROR_SHARE) ** missed
        if p_value >= ALPHA:
            continue
        if len(labels) == 2 and c != pos:
            other = labels[pos]
            metric, value_rows = f"recall['{other}']", int(matrix[pos, :].sum())
            message = (
                f"recall of '{other}' is 1.000{_interval(intervals, 'recall')}: no false negatives among {value_rows:,} actual "
                f"'{other}' rows (every one of the {predicted:,} rows predicted '{name}' is "
                f"'{name}'), while the model makes {missed:,} false positives"
            )
        else:
            metric, value_rows = f"precision['{name}']", predicted
            shown = _interval(intervals, "precision") if len(labels) == 2 else ""
            message = (
                f"precision of '{name}' is 1.000{shown}: no false positives among {predicted:,} "
                f"predicted '{name}' rows, while the model makes {missed:,} false negatives"
            )
        out.append(
            PlausibilitySignal(
                "no_errors", message, metric, 1.0, value_rows, float(missed),
                float(f"{p_value:.3g}"),
            )
        )
    return out


def _interval(intervals: Mapping[str, tuple[float, float]], metric: str) -> str:
    found = intervals.get(metric)
    return "" if found is None else f" [{found[0]:.3f}, {found[1]:.3f}]"


def _above_cv(
    primary: str, test_value: float | None, cv_scores: Sequence[float] | None, n: int
) -> PlausibilitySignal | None:
    if test_value is None or not cv_scores or len(cv_scores) < 2 or n < MIN_ROWS:
        return None
    scores = np.asarray([float(s) for s in cv_scores])
    mean, std = float(scores.mean()), float(scores.std(ddof=1))
    higher = HIGHER_IS_BETTER.get(primary, True)
    if higher:
        gain = test_value - mean
        far = test_value > scores.max() and gain > max(CV_SIGMAS * std, CV_MARGIN)
    else:
        gain = mean - test_value
        far = test_value < scores.min() and gain > max(CV_SIGMAS * std, CV_RELATIVE * abs(mean))
    if not far:
        return None
    return PlausibilitySignal(
        "above_cv",
        f"test {primary} {test_value:.3f} is far {'above' if higher else 'below'} "
        f"cross-validation ({mean:.3f} ± {std:.3f} over {len(scores)} folds)",
        primary, float(test_value), n, mean,
    )


def _suspects(report: RobustnessReport | None) -> tuple[FeatureCost, ...]:
    """The features whose absence costs most, worst first (only those that cost something)."""
    if report is None:
        return ()
    costs = [
        FeatureCost(str(c.feature), float(c.drop), c.relative_drop)
        for c in report.cases
        if c.kind == "missing" and c.feature is not None and c.drop is not None and c.drop > 0
    ]
    costs.sort(key=lambda c: -c.drop)
    return tuple(costs[:MAX_SUSPECTS])


def _regions(X: pd.DataFrame, y: np.ndarray, columns: list[str]) -> tuple[PureRegion, ...]:
    """The largest pure region of each column (in the order given), at most a few."""
    codes, levels = pd.factorize(pd.Series(y, dtype=object), sort=False)
    labels = [label_text(v) for v in levels]
    if len(labels) < 2:
        return ()
    found: list[PureRegion] = []
    for column in columns:
        regions = find_pure_regions(X[column].reset_index(drop=True), codes, labels, name=column)
        if regions:
            found.append(regions[0])
        if len(found) >= MAX_SUSPECTS:
            break
    return tuple(found)


def _cost_text(cost: FeatureCost, metric: str) -> str:
    share = f"{100 * cost.relative_drop:.1f}%" if cost.relative_drop is not None else f"{cost.drop:.3g}"
    return f"'{cost.feature}' (missing: {cost.feature} costs {share} of {metric})"
