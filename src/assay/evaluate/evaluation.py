"""The evaluation stage: one fitted model, one set of rows, every number a gate needs.

``evaluate`` scores the model once and derives everything from those predictions
(metrics, intervals, curves, slices, fairness), then probes robustness and latency
with further calls, and says whether the result is too good to be true
(:mod:`~assay.evaluate.plausibility`). ``check_acceptance`` and ``check_fairness`` compare the result
with the framing document's thresholds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from assay.config.metrics import CLASSIFICATION_TASKS, DEFAULT_PRIMARY, TASK_METRICS
from assay.config.spec import AcceptanceThreshold, parse_threshold
from assay.data.values import native
from assay.errors import ConfigError, DataError
from assay.evaluate.inputs import as_array, check_metrics, check_task
from assay.evaluate.curves import ConfusionMatrix, Curves, build_curves, compute_confusion
from assay.evaluate.fairness import FAIRNESS_METRICS, FairnessResult, fairness_metrics
from assay.evaluate.intervals import bootstrap_intervals
from assay.evaluate.latency import LatencyReport, measure_latency
from assay.evaluate.metrics import compute_metrics
from assay.evaluate.plausibility import PlausibilityReport, check_plausibility
from assay.evaluate.robustness import RobustnessReport, robustness
from assay.evaluate.slices import SliceReport, slice_metrics

__all__ = [
    "CVSummary",
    "Criterion",
    "Evaluation",
    "check_acceptance",
    "check_fairness",
    "evaluate",
]


@dataclass(frozen=True)
class CVSummary:
    """The spread of a metric over cross-validation folds."""

    scores: tuple[float, ...]
    mean: float
    std: float
    min: float
    max: float

    @classmethod
    def from_scores(cls, scores: Sequence[float]) -> CVSummary:
        """Summarise fold scores (sample standard deviation; 0 for one fold)."""
        values = [float(s) for s in scores]
        if not values or not all(math.isfinite(v) for v in values):
            raise DataError(
                "cross-validation scores must be a non-empty list of finite numbers",
                column="cv_scores",
                expected="one finite score per fold",
                received=values[:10],
                fix="Pass the fold scores of the primary metric, or None.",
            )
        arr = np.asarray(values)
        std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
        return cls(tuple(values), float(arr.mean()), std, float(arr.min()), float(arr.max()))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return {
            "scores": list(self.scores),
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CVSummary:
        """Inverse of :meth:`to_dict`."""
        return cls(tuple(data["scores"]), data["mean"], data["std"], data["min"], data["max"])


@dataclass(frozen=True)
class Criterion:
    """One acceptance or fairness check and its outcome.

    ``passed`` judges the point estimate; ``conclusive`` says whether the whole
    bootstrap interval lies on the same side of the threshold (None without interval).
    ``attribute`` names the protected attribute of a fairness criterion.
    """

    metric: str
    threshold: str
    observed: float | None
    interval: tuple[float, float] | None
    passed: bool
    attribute: str | None = None
    conclusive: bool | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields."""
        return {
            "metric": self.metric,
            "threshold": self.threshold,
            "observed": self.observed,
            "interval": list(self.interval) if self.interval is not None else None,
            "passed": self.passed,
            "attribute": self.attribute,
            "conclusive": self.conclusive,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Criterion:
        """Inverse of :meth:`to_dict`."""
        interval = data.get("interval")
        return cls(**{**data, "interval": tuple(interval) if interval is not None else None})


@dataclass(frozen=True)
class Evaluation:
    """Everything measured about one model on one set of rows."""

    task: str
    n_rows: int
    classes: tuple[Any, ...]
    primary: str
    metrics: dict[str, float | None]
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    confusion: ConfusionMatrix | None = None
    curves: Curves = field(default_factory=Curves)
    slices: tuple[SliceReport, ...] = ()
    fairness: tuple[FairnessResult, ...] = ()
    robustness: RobustnessReport | None = None
    latency: LatencyReport | None = None
    artifact_size_bytes: int | None = None
    cv: CVSummary | None = None
    seed: int = 0
    n_boot: int = 0
    plausibility: PlausibilityReport | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable fields (``json.dumps`` works on the result)."""
        return {
            "task": self.task,
            "n_rows": self.n_rows,
            "classes": list(self.classes),
            "primary": self.primary,
            "metrics": dict(self.metrics),
            "intervals": {k: [lo, hi] for k, (lo, hi) in self.intervals.items()},
            "confusion": self.confusion.to_dict() if self.confusion else None,
            "curves": self.curves.to_dict(),
            "slices": [s.to_dict() for s in self.slices],
            "fairness": [f.to_dict() for f in self.fairness],
            "robustness": self.robustness.to_dict() if self.robustness else None,
            "latency": self.latency.to_dict() if self.latency else None,
            "artifact_size_bytes": self.artifact_size_bytes,
            "cv": self.cv.to_dict() if self.cv else None,
            "seed": self.seed,
            "n_boot": self.n_boot,
            "plausibility": self.plausibility.to_dict() if self.plausibility else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evaluation:
        """Inverse of :meth:`to_dict`."""

        def opt(key: str, loader: Any) -> Any:
            value = data.get(key)
            return loader(value) if value is not None else None

        return cls(
            task=data["task"],
            n_rows=int(data["n_rows"]),
            classes=tuple(data.get("classes", ())),
            primary=data["primary"],
            metrics=dict(data["metrics"]),
            intervals={k: (float(v[0]), float(v[1])) for k, v in data.get("intervals", {}).items()},
            confusion=opt("confusion", ConfusionMatrix.from_dict),
            curves=Curves.from_dict(data.get("curves") or {}),
            slices=tuple(SliceReport.from_dict(s) for s in data.get("slices", [])),
            fairness=tuple(FairnessResult.from_dict(f) for f in data.get("fairness", [])),
            robustness=opt("robustness", RobustnessReport.from_dict),
            latency=opt("latency", LatencyReport.from_dict),
            artifact_size_bytes=data.get("artifact_size_bytes"),
            cv=opt("cv", CVSummary.from_dict),
            seed=int(data.get("seed", 0)),
            n_boot=int(data.get("n_boot", 0)),
            plausibility=opt("plausibility", PlausibilityReport.from_dict),
        )


def check_acceptance(
    evaluation: Evaluation, thresholds: Mapping[str, AcceptanceThreshold | str]
) -> list[Criterion]:
    """One :class:`Criterion` per threshold; a metric that was not computed fails.

    Raises:
        ConfigError: a threshold names a metric the task does not have, or does not parse.
    """
    valid = TASK_METRICS[evaluation.task]
    out = []
    for name, raw in thresholds.items():
        key = f"acceptance.{name}"
        if name not in valid:
            raise ConfigError(
                f"'{name}' is not a {evaluation.task} metric, so it cannot be checked",
                key=key,
                expected="one of: " + ", ".join(valid),
                received=name,
                fix="Rename the acceptance entry to one of the task's metrics.",
            )
        threshold = _parse(raw, key)
        observed = evaluation.metrics.get(name)
        interval = evaluation.intervals.get(name)
        out.append(_criterion(name, threshold, observed, interval, None))
    return out


def check_fairness(
    evaluation: Evaluation, limits: Mapping[str, AcceptanceThreshold | str]
) -> list[Criterion]:
    """Each limit checked on every protected attribute (one :class:`Criterion` each).

    A limit with no attribute to check, or with an undefined value, fails rather than
    passing silently.

    Raises:
        ConfigError: an unknown limit name, or a limit that does not parse.
    """
    out = []
    for name, raw in limits.items():
        key = f"fairness.limits.{name}"
        if name not in FAIRNESS_METRICS:
            raise ConfigError(
                f"unknown fairness limit '{name}'",
                key=key,
                expected="one of: " + ", ".join(FAIRNESS_METRICS),
                received=name,
                fix="Use one of the listed limit names.",
            )
        threshold = _parse(raw, key)
        if not evaluation.fairness:
            out.append(
                Criterion(
                    name,
                    str(threshold),
                    None,
                    None,
                    False,
                    note="no protected attribute was evaluated; name them in fairness.protected",
                )
            )
            continue
        for result in evaluation.fairness:
            out.append(_criterion(name, threshold, result.value(name), None, result.attribute))
    return out


def _parse(raw: AcceptanceThreshold | str, key: str) -> AcceptanceThreshold:
    if isinstance(raw, AcceptanceThreshold):
        return raw
    try:
        return parse_threshold(raw)
    except ValueError as exc:
        raise ConfigError(
            str(exc),
            key=key,
            expected="a comparison such as '>= 0.80'",
            received=raw,
            fix="Write the threshold as an operator and a number.",
        ) from None


def _criterion(
    name: str,
    threshold: AcceptanceThreshold,
    observed: float | None,
    interval: tuple[float, float] | None,
    attribute: str | None,
) -> Criterion:
    if observed is None:
        return Criterion(
            name,
            str(threshold),
            None,
            interval,
            False,
            attribute,
            note="the value could not be computed on these rows",
        )
    passed = threshold.holds(observed)
    conclusive = None
    if interval is not None:
        conclusive = threshold.holds(interval[0]) == threshold.holds(interval[1]) == passed
    return Criterion(name, str(threshold), observed, interval, passed, attribute, conclusive)


def _with_length_slices(
    slices: pd.DataFrame | None, X: pd.DataFrame, text_columns: Sequence[str]
) -> pd.DataFrame | None:
    """``slices`` plus a ``length:<col>`` column (``short``/``long``) per text column."""
    extra: dict[str, Any] = {}
    for col in text_columns:
        if col not in X.columns:
            continue
        words = X[col].map(lambda v: len(v.split()) if isinstance(v, str) else 0)
        cut = float(np.median(words.to_numpy())) if len(words) else 0.0
        extra[f"length:{col}"] = np.where(words.to_numpy() <= cut, "short", "long")
    if not extra:
        return slices
    added = pd.DataFrame(extra, index=range(len(X)))
    if slices is None:
        return added
    return pd.concat([slices.reset_index(drop=True), added], axis=1)


def evaluate(
    model: Any,
    X: pd.DataFrame,
    y: Any,
    *,
    task: str,
    metrics: Sequence[str] | None = None,
    slices: pd.DataFrame | None = None,
    protected: pd.DataFrame | None = None,
    min_slice_size: int = 30,
    seed: int = 0,
    n_boot: int = 200,
    cv_scores: Sequence[float] | None = None,
    artifact_size: int | None = None,
    X_reference: pd.DataFrame | None = None,
    primary: str | None = None,
    check_robustness: bool = True,
    time_latency: bool = True,
    text_columns: Sequence[str] = (),
) -> Evaluation:
    """Evaluate a fitted model on the rows ``X`` with labels ``y``.

    Args:
        model: a fitted scikit-learn-compatible estimator taking the raw feature frame
            (``predict``; ``predict_proba`` and ``classes_`` for classifiers).
        metrics: the metric names to report; all of the task's when None.
        slices, protected: extra columns aligned with ``X`` by position.
        X_reference: the training features (noise scales and ranges for robustness).
        primary: the metric robustness is measured with (default: the task's primary
            when reported, else the first of ``metrics``).
        n_boot: bootstrap resamples for the intervals (0 to skip them).
        check_robustness, time_latency: switch off the slower probes.
        text_columns: free-text columns of ``X``. Each adds a slice by length (texts up to
            the median word count are ``short``, the rest ``long``), the text cases of
            robustness (typos, casing, punctuation, truncation), and latency is timed on
            batches of 32 texts, the size a server gathers, rather than 1,000 rows.
    """
    check_task(task)
    names = check_metrics(task, metrics)
    if primary is None:
        primary = DEFAULT_PRIMARY[task] if DEFAULT_PRIMARY[task] in names else names[0]
    check_metrics(task, [primary], key="metrics.primary")
    if not isinstance(X, pd.DataFrame):
        raise DataError(
            "the features must be a DataFrame",
            column="X",
            expected="a pandas DataFrame of raw feature columns",
            received=type(X).__name__,
            fix="Pass the evaluation rows as a DataFrame.",
        )
    yt = as_array(y, "y", len(X))
    n_missing = int(pd.isna(pd.Series(yt, dtype=object)).sum())
    if n_missing:
        raise DataError(
            "the labels contain missing values",
            column="y",
            expected="a label for every evaluated row",
            received=f"{n_missing} missing of {len(yt)}",
            fix="Drop unlabelled rows before evaluating.",
        )
    classes: list[Any] = []
    if task in CLASSIFICATION_TASKS:
        classes = list(getattr(model, "classes_", []))
        if not classes:
            raise DataError(
                "a classifier must expose classes_",
                column="model",
                expected="a fitted classifier with classes_ and predict_proba",
                received=type(model).__name__,
                fix="Fit the model before evaluating it, or check the task.",
            )
        if task == "binary" and len(classes) != 2:
            raise ConfigError(
                "the task is binary but the model knows another number of classes",
                key="task",
                expected="2 classes",
                received=f"{len(classes)}: {[native(c, iso_timestamps=True) for c in classes[:10]]}",
                fix="Set task to multiclass, or check the target column.",
            )
    pred = np.asarray(model.predict(X))
    proba = None
    if task in CLASSIFICATION_TASKS and hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(X), dtype=float)

    values = compute_metrics(task, yt, pred, proba, classes or None, names)
    intervals = (
        bootstrap_intervals(task, yt, pred, proba, classes or None, names, n_boot=n_boot, seed=seed)
        if n_boot > 0
        else {}
    )
    confusion = compute_confusion(yt, pred, classes) if classes else None
    curves = build_curves(task, yt, pred, proba, classes or None, seed=seed)
    slices = _with_length_slices(slices, X, text_columns)
    slice_reports: tuple[SliceReport, ...] = ()
    if slices is not None and len(slices.columns):
        slice_reports = slice_metrics(
            task, yt, pred, slices, proba, classes or None, names, min_slice_size
        )
    fair: tuple[FairnessResult, ...] = ()
    if protected is not None and len(protected.columns):
        fair = fairness_metrics(task, yt, pred, protected, classes or None, min_slice_size)
    robust = (
        robustness(
            model, X, yt, task, primary, seed=seed, classes=classes or None,
            X_reference=X_reference, text_columns=text_columns,
        )
        if check_robustness and len(X)
        else None
    )
    plausibility = check_plausibility(
        task, yt, confusion, primary=primary, test_value=values.get(primary),
        cv_scores=cv_scores, robustness=robust, X=X, text_columns=text_columns,
        intervals=intervals,
    )
    latency = None
    if time_latency and len(X):
        sizes = {"n_single": 50, "batch_size": 32} if text_columns else {}
        latency = measure_latency(model, X, seed=seed, **sizes)
    return Evaluation(
        task=task,
        n_rows=len(X),
        classes=tuple(native(c, iso_timestamps=True) for c in classes),
        primary=primary,
        metrics=values,
        intervals=intervals,
        confusion=confusion,
        curves=curves,
        slices=slice_reports,
        fairness=fair,
        robustness=robust,
        latency=latency,
        artifact_size_bytes=int(artifact_size) if artifact_size is not None else None,
        cv=CVSummary.from_scores(cv_scores) if cv_scores is not None else None,
        seed=seed,
        n_boot=n_boot,
        plausibility=plausibility,
    )
