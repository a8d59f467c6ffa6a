"""Live performance: the task's metrics on logged predictions that received a true label.

Feedback labels (``POST /v1/feedback``) are joined to the logged predictions by
:func:`assay.model.predictions.read_predictions`. This module turns that frame into
metrics with bootstrap intervals, compares them with the registered test metrics
of the model version, and guards against a feedback loop: a label source whose
labels merely copy the model's own predictions (agreement far above the model's
test accuracy) would make a failing model look perfect, so it is detected,
excluded and reported.

A drop is measured in the metric's direction (positive = worse): for scores in
[0, 1] and R² it is the absolute difference ``test - live``; for errors (MAE, RMSE,
log loss, ...) it is relative to the test value, ``(live - test) / test``, because
an error has the target's unit. The model is *degraded* when the drop exceeds the
tolerance and the bootstrap interval of the live value lies entirely on the worse
side of the test value (the drop is not noise).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from assay.config.metrics import CLASSIFICATION_TASKS, HIGHER_IS_BETTER, metrics_for
from assay.data.values import native, native_array
from assay.evaluate import bootstrap_intervals, compute_metrics
from assay.store.database import Store
from assay.store.tables import feedback

__all__ = [
    "FEEDBACK_AGREEMENT",
    "FEEDBACK_MIN_LABELS",
    "FEEDBACK_TEST_ACCURACY",
    "MIN_LABELS",
    "FeedbackLoopCheck",
    "LabelSource",
    "LivePerformance",
    "attach_label_sources",
    "coerce_labels",
    "detect_feedback_loop",
    "live_performance",
    "metric_drop",
    "proba_matrix",
]

#: labelled rows needed before live metrics are judged
MIN_LABELS = 30
#: a label source agreeing with the model more than this ...
FEEDBACK_AGREEMENT = 0.99
#: ... on at least this many labels ...
FEEDBACK_MIN_LABELS = 50
#: ... while the model's test accuracy is below this, copies the model's predictions
FEEDBACK_TEST_ACCURACY = 0.95
#: the label source used when the feedback table does not say who sent a label
UNKNOWN_SOURCE = "feedback"
_IN_CHUNK = 500


@dataclass(frozen=True)
class LabelSource:
    """How one feedback sender's labels agree with the logged predictions."""

    source: str
    n_labels: int
    agreement: float | None
    suspicious: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "source": self.source,
            "n_labels": self.n_labels,
            "agreement": self.agreement,
            "suspicious": self.suspicious,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelSource:
        """The inverse of :meth:`to_dict`."""
        agreement = data.get("agreement")
        return cls(
            source=str(data["source"]),
            n_labels=int(data["n_labels"]),
            agreement=float(agreement) if agreement is not None else None,
            suspicious=bool(data["suspicious"]),
        )


@dataclass(frozen=True)
class FeedbackLoopCheck:
    """Which label sources copy the model's predictions (their labels are excluded).

    Attributes:
        sources: every label source seen, with its agreement rate.
        test_accuracy: the model's accuracy on its sealed test set (None for regression).
        agreement_threshold: agreement above this is suspicious ...
        min_labels: ... on at least this many labels ...
        accuracy_ceiling: ... when the test accuracy is below this.
        excluded_sources: the sources whose labels are left out.
        excluded_labels: how many labels that removes.
    """

    sources: tuple[LabelSource, ...]
    test_accuracy: float | None
    agreement_threshold: float = FEEDBACK_AGREEMENT
    min_labels: int = FEEDBACK_MIN_LABELS
    accuracy_ceiling: float = FEEDBACK_TEST_ACCURACY
    excluded_sources: tuple[str, ...] = ()
    excluded_labels: int = 0

    @property
    def detected(self) -> bool:
        """True when some labels copy the model's own predictions."""
        return bool(self.excluded_sources)

    @property
    def message(self) -> str:
        """One line for reports."""
        if not self.detected:
            return "no label source copies the model's predictions"
        parts = [
            f"'{s.source}' agrees with the model on {s.agreement:.1%} of {s.n_labels} labels"
            for s in self.sources
            if s.suspicious and s.agreement is not None
        ]
        accuracy = (
            f" while its test accuracy is {self.test_accuracy:.1%}"
            if self.test_accuracy is not None
            else ""
        )
        return (
            "feedback loop: " + "; ".join(parts) + accuracy
            + f"; {self.excluded_labels} label(s) excluded from live metrics and retraining"
        )

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """True for the rows of ``frame`` whose label comes from an excluded source."""
        if not self.excluded_sources or "label_source" not in frame.columns:
            return np.zeros(len(frame), dtype=bool)
        return np.asarray(frame["label_source"].isin(list(self.excluded_sources)), dtype=bool)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "sources": [s.to_dict() for s in self.sources],
            "test_accuracy": self.test_accuracy,
            "agreement_threshold": self.agreement_threshold,
            "min_labels": self.min_labels,
            "accuracy_ceiling": self.accuracy_ceiling,
            "excluded_sources": list(self.excluded_sources),
            "excluded_labels": self.excluded_labels,
            "detected": self.detected,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeedbackLoopCheck:
        """The inverse of :meth:`to_dict`."""
        accuracy = data.get("test_accuracy")
        return cls(
            sources=tuple(LabelSource.from_dict(s) for s in data.get("sources", [])),
            test_accuracy=float(accuracy) if accuracy is not None else None,
            agreement_threshold=float(data.get("agreement_threshold", FEEDBACK_AGREEMENT)),
            min_labels=int(data.get("min_labels", FEEDBACK_MIN_LABELS)),
            accuracy_ceiling=float(data.get("accuracy_ceiling", FEEDBACK_TEST_ACCURACY)),
            excluded_sources=tuple(data.get("excluded_sources", [])),
            excluded_labels=int(data.get("excluded_labels", 0)),
        )


@dataclass(frozen=True)
class LivePerformance:
    """The metrics of one model version on its labelled logged predictions.

    Attributes:
        version: the model version.
        task: the task.
        primary: the project's primary metric.
        n_predictions: predictions in the window.
        n_labelled: labelled predictions used (after exclusions).
        metrics: metric -> live value (None where undefined on these rows).
        intervals: metric -> [low, high] 95 % bootstrap interval.
        reference: metric -> value on the sealed test set at registration.
        checked_metric: the metric the drop is judged on (the primary when defined).
        live_value: its live value.
        reference_value: its registered test value.
        drop: how much worse live is, in the metric's direction (see the module doc).
        tolerance: ``monitoring.performance_tolerance``.
        degraded: the drop exceeds the tolerance beyond noise.
        min_labels: labelled rows needed to judge.
        feedback_loop: the feedback-loop check of the labels.
        unknown_labels: labels that are not one of the model's classes (left out).
        note: why nothing was judged, when so.
    """

    version: int
    task: str
    primary: str
    n_predictions: int
    n_labelled: int
    metrics: dict[str, float | None] = field(default_factory=dict)
    intervals: dict[str, list[float]] = field(default_factory=dict)
    reference: dict[str, float | None] = field(default_factory=dict)
    checked_metric: str | None = None
    live_value: float | None = None
    reference_value: float | None = None
    drop: float | None = None
    tolerance: float = 0.05
    degraded: bool = False
    min_labels: int = MIN_LABELS
    feedback_loop: FeedbackLoopCheck | None = None
    unknown_labels: int = 0
    note: str = ""

    @property
    def assessed(self) -> bool:
        """True when there were enough labels to judge the drop."""
        return self.n_labelled >= self.min_labels and self.drop is not None

    @property
    def message(self) -> str:
        """One line for reports."""
        if not self.assessed:
            return self.note or f"{self.n_labelled} labelled predictions (needs {self.min_labels})"
        verdict = "DEGRADED" if self.degraded else "within tolerance"
        return (
            f"{self.checked_metric} live {self.live_value:.4g} vs test {self.reference_value:.4g} "
            f"on {self.n_labelled} labels (drop {self.drop:+.4g}, tolerance {self.tolerance:g}): "
            f"{verdict}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "version": self.version,
            "task": self.task,
            "primary": self.primary,
            "n_predictions": self.n_predictions,
            "n_labelled": self.n_labelled,
            "metrics": dict(self.metrics),
            "intervals": {k: list(v) for k, v in self.intervals.items()},
            "reference": dict(self.reference),
            "checked_metric": self.checked_metric,
            "live_value": self.live_value,
            "reference_value": self.reference_value,
            "drop": self.drop,
            "tolerance": self.tolerance,
            "degraded": self.degraded,
            "assessed": self.assessed,
            "min_labels": self.min_labels,
            "feedback_loop": self.feedback_loop.to_dict() if self.feedback_loop else None,
            "unknown_labels": self.unknown_labels,
            "note": self.note,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LivePerformance:
        """The inverse of :meth:`to_dict`."""
        loop = data.get("feedback_loop")
        return cls(
            version=int(data["version"]),
            task=str(data["task"]),
            primary=str(data["primary"]),
            n_predictions=int(data["n_predictions"]),
            n_labelled=int(data["n_labelled"]),
            metrics=dict(data.get("metrics", {})),
            intervals={k: [float(x) for x in v] for k, v in data.get("intervals", {}).items()},
            reference=dict(data.get("reference", {})),
            checked_metric=data.get("checked_metric"),
            live_value=data.get("live_value"),
            reference_value=data.get("reference_value"),
            drop=data.get("drop"),
            tolerance=float(data.get("tolerance", 0.05)),
            degraded=bool(data.get("degraded", False)),
            min_labels=int(data.get("min_labels", MIN_LABELS)),
            feedback_loop=FeedbackLoopCheck.from_dict(loop) if loop else None,
            unknown_labels=int(data.get("unknown_labels", 0)),
            note=str(data.get("note", "")),
        )


# -- labels -----------------------------------------------------------------------


def _key(value: Any) -> str:
    value = native(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def coerce_labels(
    values: Sequence[Any] | pd.Series, task: str, classes: Sequence[Any] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Labels as the model's class values (or floats for regression), and which are valid.

    A classification label matches a class by value or by its text (``"1"``, ``1``
    and ``1.0`` all match the class ``1``); a label that matches no class, a missing
    label and a regression label that is not a finite number are invalid.
    """
    items = list(values)
    valid = np.zeros(len(items), dtype=bool)
    if task not in CLASSIFICATION_TASKS:
        out = np.full(len(items), np.nan, dtype=float)
        for i, value in enumerate(items):
            if value is None or isinstance(value, bool):
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            if math.isfinite(number):
                out[i] = number
                valid[i] = True
        return out, valid
    lookup = {_key(c): c for c in (classes or [])}
    labels = np.empty(len(items), dtype=object)
    for i, value in enumerate(items):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        key = _key(value)
        if lookup:
            if key in lookup:
                labels[i] = lookup[key]
                valid[i] = True
        else:
            labels[i] = value
            valid[i] = True
    return labels, valid


def proba_matrix(probabilities: Sequence[Any], classes: Sequence[Any] | None) -> np.ndarray | None:
    """Logged class probabilities as a matrix in ``classes`` order; None if any row lacks one."""
    if not classes:
        return None
    keys = [_key(c) for c in classes]
    rows = []
    for probs in probabilities:
        if not isinstance(probs, Mapping):
            return None
        try:
            rows.append([float(probs[k]) for k in keys])
        except (KeyError, TypeError, ValueError):
            return None
    if not rows:
        return None
    return np.asarray(rows, dtype=float)


def attach_label_sources(store: Store, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (from ``read_predictions``) with a ``label_source`` column: who sent each
    row's (latest) label, None where there is no label."""
    out = frame.copy()
    ids = [pid for pid, label in zip(out["id"], out["label"]) if label is not None]
    sources: dict[str, str] = {}
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        latest = (
            select(func.max(feedback.c.id).label("fid"))
            .where(feedback.c.prediction_id.in_(chunk))
            .group_by(feedback.c.prediction_id)
            .subquery()
        )
        query = select(feedback.c.prediction_id, feedback.c.actor).join(
            latest, feedback.c.id == latest.c.fid
        )
        with store.connect() as conn:
            sources.update({str(pid): str(actor) for pid, actor in conn.execute(query)})
    out["label_source"] = [
        sources.get(str(pid), UNKNOWN_SOURCE) if label is not None else None
        for pid, label in zip(out["id"], out["label"])
    ]
    return out


def detect_feedback_loop(
    frame: pd.DataFrame,
    *,
    task: str,
    classes: Sequence[Any] | None,
    test_accuracy: float | None,
    agreement_threshold: float = FEEDBACK_AGREEMENT,
    min_labels: int = FEEDBACK_MIN_LABELS,
    accuracy_ceiling: float = FEEDBACK_TEST_ACCURACY,
) -> FeedbackLoopCheck:
    """Find label sources whose labels copy the logged predictions.

    A source is suspicious when it sent at least ``min_labels`` labels that agree
    with the model's own prediction more often than ``agreement_threshold`` while
    the model's test accuracy is below ``accuracy_ceiling`` (a model that is right
    90 % of the time cannot honestly be confirmed 99.5 % of the time). For
    regression, agreement means the label equals the prediction to 1e-9 (real
    targets essentially never do).

    Args:
        frame: rows with ``prediction`` and ``label`` (and ``label_source`` when
            known, see :func:`attach_label_sources`).
        task: the task.
        classes: the model's classes (classification).
        test_accuracy: the model's accuracy on its sealed test set.
    """
    labels, valid = coerce_labels(frame["label"], task, classes)
    predicted, predicted_valid = coerce_labels(frame["prediction"], task, classes)
    usable = valid & predicted_valid
    if task in CLASSIFICATION_TASKS:
        agree = np.array([usable[i] and labels[i] == predicted[i] for i in range(len(labels))])
        plausible = test_accuracy is None or test_accuracy < accuracy_ceiling
    else:
        with np.errstate(invalid="ignore"):
            agree = usable & np.isclose(
                labels.astype(float), predicted.astype(float), rtol=1e-9, atol=1e-12
            )
        plausible = True
    if "label_source" in frame.columns:
        source = frame["label_source"].fillna(UNKNOWN_SOURCE).astype(str).to_numpy()
    else:
        source = np.full(len(frame), UNKNOWN_SOURCE, dtype=object)
    found: list[LabelSource] = []
    excluded: list[str] = []
    excluded_labels = 0
    for name in sorted(set(source[usable].tolist())):
        rows = usable & (source == name)
        n = int(rows.sum())
        agreement = float(agree[rows].mean()) if n else None
        suspicious = bool(
            plausible and n >= min_labels and agreement is not None
            and agreement > agreement_threshold
        )
        found.append(LabelSource(name, n, agreement, suspicious))
        if suspicious:
            excluded.append(name)
            excluded_labels += int((valid & (source == name)).sum())
    return FeedbackLoopCheck(
        sources=tuple(found),
        test_accuracy=test_accuracy if task in CLASSIFICATION_TASKS else None,
        agreement_threshold=agreement_threshold,
        min_labels=min_labels,
        accuracy_ceiling=accuracy_ceiling,
        excluded_sources=tuple(excluded),
        excluded_labels=excluded_labels,
    )


# -- metrics ----------------------------------------------------------------------


def metric_drop(metric: str, live: float, reference: float) -> float:
    """How much worse ``live`` is than ``reference`` (positive = worse; see the module doc)."""
    if HIGHER_IS_BETTER[metric]:
        return float(reference - live)
    scale = abs(reference)
    return float((live - reference) / scale) if scale > 0 else float(live - reference)


def live_performance(
    frame: pd.DataFrame,
    *,
    version: int,
    task: str,
    classes: Sequence[Any] | None,
    primary: str,
    reference: Mapping[str, Any],
    tolerance: float,
    metrics: Sequence[str] | None = None,
    feedback_loop: FeedbackLoopCheck | None = None,
    min_labels: int = MIN_LABELS,
    n_boot: int = 200,
    seed: int = 0,
) -> LivePerformance:
    """The live metrics of ``version`` on the labelled rows of ``frame``.

    Args:
        frame: logged predictions (``prediction``, ``probabilities``, ``label``; see
            :func:`assay.model.predictions.read_predictions`), labelled or not.
        version: the model version that made the predictions.
        task: the task.
        classes: the model's classes (classification; ``lineage["classes"]``).
        primary: the primary metric.
        reference: the registered test metrics (``record.metrics["test"]``).
        tolerance: the largest acceptable drop (``monitoring.performance_tolerance``).
        metrics: the metrics to compute (default: every metric of the task).
        feedback_loop: a check whose excluded sources are left out.
        min_labels: labelled rows needed to judge a drop.
        n_boot: bootstrap resamples for the intervals.
        seed: seeds the bootstrap.
    """
    n_predictions = int(len(frame))
    names = list(metrics) if metrics is not None else list(metrics_for(task))
    ref = {k: _finite(reference.get(k)) for k in names}
    labels, valid = coerce_labels(frame["label"], task, classes) if len(frame) else (
        np.empty(0, dtype=object), np.zeros(0, dtype=bool)
    )
    has_label = np.array([v is not None for v in frame["label"]], dtype=bool)
    unknown = int((has_label & ~valid).sum())
    keep = valid.copy()
    if feedback_loop is not None:
        keep &= ~feedback_loop.mask(frame)
    predicted, predicted_valid = coerce_labels(frame["prediction"], task, classes)
    keep &= predicted_valid
    n_labelled = int(keep.sum())
    base = dict(
        version=int(version), task=task, primary=primary, n_predictions=n_predictions,
        n_labelled=n_labelled, reference=ref, tolerance=float(tolerance),
        min_labels=int(min_labels), feedback_loop=feedback_loop, unknown_labels=unknown,
    )
    if n_labelled == 0:
        return LivePerformance(**base, note="no labelled predictions in the window")  # type: ignore[arg-type]
    y_true, y_pred = native_array(labels[keep]), native_array(predicted[keep])
    rows = frame.loc[keep]
    proba = (
        proba_matrix(rows["probabilities"].tolist(), classes)
        if task in CLASSIFICATION_TASKS
        else None
    )
    cls = list(classes) if classes else None
    live = {k: _finite(v) for k, v in compute_metrics(task, y_true, y_pred, proba, cls, names).items()}
    intervals = {
        k: [float(lo), float(hi)]
        for k, (lo, hi) in bootstrap_intervals(
            task, y_true, y_pred, proba, cls, names, n_boot=n_boot, seed=seed
        ).items()
    }
    checked = _checked_metric(task, primary, live, ref)
    result = dict(base, metrics=live, intervals=intervals)
    if n_labelled < min_labels:
        note = f"only {n_labelled} labelled predictions (needs {min_labels} to judge a drop)"
        return LivePerformance(**result, checked_metric=checked, note=note)  # type: ignore[arg-type]
    if checked is None:
        note = "no metric is defined on both the labelled traffic and the test set"
        return LivePerformance(**result, note=note)  # type: ignore[arg-type]
    live_value, ref_value = float(live[checked]), float(ref[checked])  # type: ignore[arg-type]
    drop = metric_drop(checked, live_value, ref_value)
    interval = intervals.get(checked)
    beyond_noise = True
    if interval is not None:
        beyond_noise = (
            interval[1] < ref_value if HIGHER_IS_BETTER[checked] else interval[0] > ref_value
        )
    return LivePerformance(
        **result,  # type: ignore[arg-type]
        checked_metric=checked,
        live_value=live_value,
        reference_value=ref_value,
        drop=drop,
        degraded=bool(drop > tolerance and beyond_noise),
    )


def _checked_metric(
    task: str, primary: str, live: Mapping[str, float | None], ref: Mapping[str, float | None]
) -> str | None:
    fallback = "accuracy" if task in CLASSIFICATION_TASKS else "mae"
    for name in (primary, fallback, *live):
        if live.get(name) is not None and ref.get(name) is not None:
            return name
    return None


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
