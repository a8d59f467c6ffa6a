"""The pictures of a model's errors, as points a report can draw.

Confusion matrix, ROC and precision-recall curves (binary, and one-vs-rest per class
for more classes), a reliability (calibration) curve with its expected calibration
error, a histogram of the scores per true class, the precision/recall/F1 of a binary model
against the decision threshold (with the threshold the model decides at), and for
regression a residual summary and a predicted-vs-actual sample.
Every curve is thinned to at most :data:`MAX_POINTS` points.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from sklearn.metrics import precision_recall_curve, roc_curve

from assay.config.metrics import CLASSIFICATION_TASKS
from assay.data.values import native
from assay.evaluate.inputs import as_array, as_proba, check_task, resolve_classes

__all__ = [
    "MAX_POINTS",
    "Calibration",
    "ConfusionMatrix",
    "Curve",
    "Curves",
    "ResidualSummary",
    "ScoreHistogram",
    "ThresholdCurve",
    "build_curves",
    "compute_confusion",
    "downsample",
    "expected_calibration_error",
]

MAX_POINTS = 200
#: predicted-vs-actual points kept for a regression scatter
MAX_SCATTER = 500
CALIBRATION_BINS = 10
#: equal-width bins of the score histograms over [0, 1]
SCORE_BINS = 20
#: decision thresholds the threshold curve is evaluated at (0.00, 0.01, ..., 1.00)
THRESHOLD_GRID = 101


@dataclass(frozen=True)
class ConfusionMatrix:
    """Counts of [true label][predicted label], rows and columns in the order of ``labels``."""

    labels: tuple[Any, ...]
    matrix: tuple[tuple[int, ...], ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return {"labels": list(self.labels), "matrix": [list(row) for row in self.matrix]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConfusionMatrix:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(data["labels"]), tuple(tuple(int(v) for v in r) for r in data["matrix"]))


@dataclass(frozen=True)
class Curve:
    """Points of one curve: ``kind`` is roc, pr or predicted_vs_actual; ``label`` the class."""

    kind: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    label: Any = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return {"kind": self.kind, "x": list(self.x), "y": list(self.y), "label": self.label}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Curve:
        """Inverse of :meth:`to_dict`."""
        return cls(data["kind"], tuple(data["x"]), tuple(data["y"]), data.get("label"))


@dataclass(frozen=True)
class Calibration:
    """A reliability curve (non-empty bins only) and the expected calibration error.

    For binary tasks the probability is that of the positive class; for more classes it
    is the top-label confidence against whether the predicted label was right.
    """

    mean_predicted: tuple[float, ...]
    fraction_positive: tuple[float, ...]
    counts: tuple[int, ...]
    ece: float
    kind: str = "positive_class"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return {
            "mean_predicted": list(self.mean_predicted),
            "fraction_positive": list(self.fraction_positive),
            "counts": list(self.counts),
            "ece": self.ece,
            "kind": self.kind,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        """Inverse of :meth:`to_dict`."""
        return cls(
            tuple(data["mean_predicted"]),
            tuple(data["fraction_positive"]),
            tuple(data["counts"]),
            float(data["ece"]),
            data.get("kind", "positive_class"),
        )


@dataclass(frozen=True)
class ResidualSummary:
    """Distribution of residuals (predicted - actual) of a regression model."""

    mean: float
    std: float
    mean_abs: float
    quantiles: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return {
            "mean": self.mean,
            "std": self.std,
            "mean_abs": self.mean_abs,
            "quantiles": dict(self.quantiles),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResidualSummary:
        """Inverse of :meth:`to_dict`."""
        return cls(data["mean"], data["std"], data["mean_abs"], dict(data["quantiles"]))


@dataclass(frozen=True)
class ScoreHistogram:
    """How the scores of the test rows fall, one histogram per true class.

    ``kind`` is ``positive_class`` (binary: the probability of the positive class) or
    ``true_class`` (more classes: the probability the model gave each row's true class).
    ``edges`` are the ``len(counts[i]) + 1`` bin edges over [0, 1]; ``counts[i]`` the rows
    of true class ``labels[i]`` per bin.
    """

    kind: str
    edges: tuple[float, ...]
    labels: tuple[Any, ...]
    counts: tuple[tuple[int, ...], ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return {"kind": self.kind, "edges": list(self.edges), "labels": list(self.labels),
                "counts": [list(c) for c in self.counts]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoreHistogram:
        """Inverse of :meth:`to_dict`."""
        return cls(str(data["kind"]), tuple(float(v) for v in data["edges"]),
                   tuple(data["labels"]), tuple(tuple(int(v) for v in c) for c in data["counts"]))


@dataclass(frozen=True)
class ThresholdCurve:
    """Precision, recall and F1 of a binary model against the decision threshold.

    The positive class is predicted where its probability reaches the threshold; only
    thresholds at which some row is predicted positive are kept. ``threshold`` is the
    threshold the model decides at: the tuned one when ``tuned``, 0.5 when it predicts the
    more probable class, None when its decisions are no single cut of the score (per-group
    thresholds). ``precision_at``, ``recall_at`` and ``f1_at`` are those of the model's own
    decisions on the test rows.
    """

    thresholds: tuple[float, ...]
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    f1: tuple[float, ...]
    threshold: float | None
    tuned: bool
    precision_at: float
    recall_at: float
    f1_at: float
    positive_label: Any = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return {
            "thresholds": list(self.thresholds), "precision": list(self.precision),
            "recall": list(self.recall), "f1": list(self.f1), "threshold": self.threshold,
            "tuned": self.tuned, "precision_at": self.precision_at, "recall_at": self.recall_at,
            "f1_at": self.f1_at, "positive_label": self.positive_label,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ThresholdCurve:
        """Inverse of :meth:`to_dict`."""
        return cls(
            tuple(float(v) for v in data["thresholds"]),
            tuple(float(v) for v in data["precision"]),
            tuple(float(v) for v in data["recall"]),
            tuple(float(v) for v in data["f1"]),
            None if data.get("threshold") is None else float(data["threshold"]),
            bool(data["tuned"]), float(data["precision_at"]),
            float(data["recall_at"]), float(data["f1_at"]), data.get("positive_label"),
        )


@dataclass(frozen=True)
class Curves:
    """All the curves of one evaluation; fields that do not apply to the task are empty.

    ``score_histogram`` and ``threshold_curve`` are None in evaluations stored before
    they were measured.
    """

    roc: tuple[Curve, ...] = ()
    pr: tuple[Curve, ...] = ()
    calibration: Calibration | None = None
    residuals: ResidualSummary | None = None
    predicted_vs_actual: Curve | None = None
    score_histogram: ScoreHistogram | None = None
    threshold_curve: ThresholdCurve | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return {
            "roc": [c.to_dict() for c in self.roc],
            "pr": [c.to_dict() for c in self.pr],
            "calibration": self.calibration.to_dict() if self.calibration else None,
            "residuals": self.residuals.to_dict() if self.residuals else None,
            "predicted_vs_actual": (
                self.predicted_vs_actual.to_dict() if self.predicted_vs_actual else None
            ),
            "score_histogram": self.score_histogram.to_dict() if self.score_histogram else None,
            "threshold_curve": self.threshold_curve.to_dict() if self.threshold_curve else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Curves:
        """Inverse of :meth:`to_dict`."""
        cal, res, pva = (
            data.get("calibration"),
            data.get("residuals"),
            data.get("predicted_vs_actual"),
        )
        hist, thr = data.get("score_histogram"), data.get("threshold_curve")
        return cls(
            roc=tuple(Curve.from_dict(c) for c in data.get("roc", [])),
            pr=tuple(Curve.from_dict(c) for c in data.get("pr", [])),
            calibration=Calibration.from_dict(cal) if cal else None,
            residuals=ResidualSummary.from_dict(res) if res else None,
            predicted_vs_actual=Curve.from_dict(pva) if pva else None,
            score_histogram=ScoreHistogram.from_dict(hist) if hist else None,
            threshold_curve=ThresholdCurve.from_dict(thr) if thr else None,
        )


def downsample(
    x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """Evenly thinned points, always keeping the first and the last."""
    if len(x) <= max_points:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, max_points).round().astype(int))
    return x[keep], y[keep]


def compute_confusion(y_true: Any, y_pred: Any, classes: Sequence[Any]) -> ConfusionMatrix:
    """The confusion matrix over ``classes`` plus any label seen outside them."""
    yt = as_array(y_true, "y_true")
    yp = as_array(y_pred, "y_pred", len(yt))
    known = set(classes)
    labels = [*classes, *(v for v in dict.fromkeys([*yt.tolist(), *yp.tolist()]) if v not in known)]
    matrix = sk_confusion_matrix(yt, yp, labels=labels)
    return ConfusionMatrix(
        tuple(native(v, iso_timestamps=True) for v in labels), tuple(tuple(int(v) for v in row) for row in matrix)
    )


def expected_calibration_error(
    positive: np.ndarray, prob: np.ndarray, n_bins: int = CALIBRATION_BINS
) -> float:
    """Sum over uniform bins of (bin share) x |mean predicted - observed frequency|."""
    positive = np.asarray(positive, dtype=float)
    prob = np.asarray(prob, dtype=float)
    bins = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(bins[1:-1], prob)  # the same binning as calibration_curve
    total = np.bincount(ids, minlength=n_bins)
    gap = np.abs(
        np.bincount(ids, weights=prob, minlength=n_bins)
        - np.bincount(ids, weights=positive, minlength=n_bins)
    )
    return float(gap.sum() / max(total.sum(), 1))


def build_curves(
    task: str,
    y_true: Any,
    y_pred: Any,
    proba: Any = None,
    classes: Sequence[Any] | None = None,
    seed: int = 0,
    threshold: float | None = None,
) -> Curves:
    """The curves of ``task`` for these predictions (``seed`` picks the scatter sample).

    ``threshold`` is a binary model's tuned decision threshold. Without one, the threshold
    is read from the decisions: 0.5 when they are the more probable class, else the lowest
    score predicted positive when every such score is above every score predicted negative.
    """
    check_task(task)
    yt = as_array(y_true, "y_true")
    yp = as_array(y_pred, "y_pred", len(yt))
    if len(yt) == 0:
        return Curves()
    if task not in CLASSIFICATION_TASKS:
        return _regression_curves(yt.astype(float), yp.astype(float), seed)
    labels = resolve_classes(task, yt, yp, classes)
    pr = as_proba(proba, len(yt), len(labels))
    if pr is None:
        return Curves()
    if len(labels) == 2:
        targets = [(labels[1], yt == labels[1], pr[:, 1])]
    else:
        targets = [(label, yt == label, pr[:, k]) for k, label in enumerate(labels)]
    roc, prc = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for label, positive, score in targets:
            if not positive.any() or positive.all():
                continue
            fpr, tpr, _ = roc_curve(positive, score)
            roc.append(_curve("roc", fpr, tpr, label))
            precision, recall, _ = precision_recall_curve(positive, score)
            prc.append(_curve("pr", recall, precision, label))
    if len(labels) == 2:
        positive, prob, kind = yt == labels[1], pr[:, 1], "positive_class"
    else:
        top = pr.argmax(axis=1)
        positive = yt == np.asarray(labels, dtype=object)[top]
        prob, kind = pr[np.arange(len(yt)), top], "top_label"
    prob = np.clip(prob, 0.0, 1.0)
    calibration = _calibration(positive, prob, kind)
    threshold_curve = None
    if len(labels) == 2:
        histogram = _score_histogram("positive_class", yt, pr[:, 1], labels)
        threshold_curve = _threshold_curve(yt == labels[1], pr[:, 1], yp == labels[1],
                                           threshold, labels[1])
    else:
        index = {label: k for k, label in enumerate(labels)}
        known = np.asarray([v in index for v in yt.tolist()], dtype=bool)
        cols = np.asarray([index.get(v, 0) for v in yt.tolist()], dtype=int)
        true_prob = np.where(known, pr[np.arange(len(yt)), cols], 0.0)
        histogram = _score_histogram("true_class", yt, true_prob, labels)
    return Curves(roc=tuple(roc), pr=tuple(prc), calibration=calibration,
                  score_histogram=histogram, threshold_curve=threshold_curve)


def _score_histogram(
    kind: str, yt: np.ndarray, score: np.ndarray, labels: Sequence[Any]
) -> ScoreHistogram:
    edges = np.linspace(0.0, 1.0, SCORE_BINS + 1)
    score = np.clip(np.asarray(score, dtype=float), 0.0, 1.0)
    counts = []
    for label in labels:
        rows = score[yt == label]
        counts.append(tuple(int(v) for v in np.histogram(rows, bins=edges)[0]))
    return ScoreHistogram(
        kind,
        tuple(float(v) for v in edges),
        tuple(native(v, iso_timestamps=True) for v in labels),
        tuple(counts),
    )


def _precision_recall_at(positive: np.ndarray, score: np.ndarray, cut: float) -> tuple[float, ...]:
    predicted = score >= cut
    tp = float(np.sum(predicted & positive))
    n_pred, n_pos = float(predicted.sum()), float(positive.sum())
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_pos if n_pos else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _decision_cut(
    decided: np.ndarray, score: np.ndarray, threshold: float | None
) -> tuple[float | None, bool]:
    """The threshold the decisions follow and whether it is tuned (not 0.5)."""
    if threshold is not None:
        return float(threshold), True
    if np.array_equal(decided, score > 0.5):
        return 0.5, False
    if decided.any() and (decided.all() or score[decided].min() > score[~decided].max()):
        return float(score[decided].min()), True
    return None, False


def _threshold_curve(
    positive: np.ndarray, score: np.ndarray, decided: np.ndarray, threshold: float | None,
    label: Any,
) -> ThresholdCurve | None:
    if not positive.any():
        return None
    score = np.asarray(score, dtype=float)
    points = [(float(t), *_precision_recall_at(positive, score, float(t)))
              for t in np.linspace(0.0, 1.0, THRESHOLD_GRID) if np.any(score >= t)]
    cut, tuned = _decision_cut(decided, score, threshold)
    at = _precision_recall_at(positive, decided.astype(float), 0.5)
    return ThresholdCurve(
        thresholds=tuple(p[0] for p in points),
        precision=tuple(p[1] for p in points),
        recall=tuple(p[2] for p in points),
        f1=tuple(p[3] for p in points),
        threshold=cut,
        tuned=tuned,
        precision_at=at[0],
        recall_at=at[1],
        f1_at=at[2],
        positive_label=native(label, iso_timestamps=True),
    )


def _curve(kind: str, x: np.ndarray, y: np.ndarray, label: Any) -> Curve:
    x, y = downsample(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    return Curve(kind, tuple(float(v) for v in x), tuple(float(v) for v in y), native(label, iso_timestamps=True))


def _calibration(positive: np.ndarray, prob: np.ndarray, kind: str) -> Calibration:
    bins = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    counts = np.bincount(np.searchsorted(bins[1:-1], prob), minlength=CALIBRATION_BINS)
    if positive.all() or not positive.any():
        # calibration_curve needs both outcomes present; compute the same bins directly
        ids = np.searchsorted(bins[1:-1], prob)
        nonzero = counts > 0
        frac = (
            np.bincount(ids, weights=positive.astype(float), minlength=CALIBRATION_BINS)[nonzero]
            / counts[nonzero]
        )
        mean = np.bincount(ids, weights=prob, minlength=CALIBRATION_BINS)[nonzero] / counts[nonzero]
    else:
        frac, mean = calibration_curve(positive, prob, n_bins=CALIBRATION_BINS, strategy="uniform")
    return Calibration(
        mean_predicted=tuple(float(v) for v in mean),
        fraction_positive=tuple(float(v) for v in frac),
        counts=tuple(int(v) for v in counts[counts > 0]),
        ece=expected_calibration_error(positive, prob),
        kind=kind,
    )


def _regression_curves(yt: np.ndarray, yp: np.ndarray, seed: int) -> Curves:
    residual = yp - yt
    qs = {"min": 0.0, "p05": 5.0, "p25": 25.0, "p50": 50.0, "p75": 75.0, "p95": 95.0, "max": 100.0}
    values = np.percentile(residual, list(qs.values()))
    summary = ResidualSummary(
        mean=float(residual.mean()),
        std=float(residual.std(ddof=1)) if len(residual) > 1 else 0.0,
        mean_abs=float(np.abs(residual).mean()),
        quantiles={name: float(v) for name, v in zip(qs, values, strict=True)},
    )
    rows = np.arange(len(yt))
    if len(rows) > MAX_SCATTER:
        rows = np.sort(np.random.default_rng(seed).choice(rows, MAX_SCATTER, replace=False))
    scatter = Curve(
        "predicted_vs_actual", tuple(float(v) for v in yt[rows]), tuple(float(v) for v in yp[rows])
    )
    return Curves(residuals=summary, predicted_vs_actual=scatter)
