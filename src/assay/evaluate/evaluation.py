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
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from assay.config.metrics import (
    CLASSIFICATION_TASKS,
    DEFAULT_PRIMARY,
    TASK_METRICS,
    fairness_limits_for,
)
from assay.config.spec import AcceptanceThreshold, parse_threshold
from assay.data.values import native
from assay.errors import ConfigError, DataError
from assay.evaluate.inputs import as_array, check_metrics, check_task
from assay.evaluate.calibration import Recalibration
from assay.evaluate.curves import ConfusionMatrix, Curves, build_curves, compute_confusion
from assay.evaluate.fairness import FairnessResult, fairness_metrics
from assay.evaluate.intervals import bootstrap_intervals
from assay.evaluate.latency import LatencyReport, ServedPath, measure_latency
from assay.evaluate.metrics import compute_metrics
from assay.evaluate.mitigation import MitigationComparison
from assay.evaluate.plausibility import PlausibilityReport, check_plausibility
from assay.evaluate.robustness import RobustnessReport, robustness
from assay.evaluate.slices import SliceReport, slice_metrics

__all__ = [
    "CVSummary",
    "Criterion",
    "Evaluation",
    "check_acceptance",
    "check_fairness",
    "check_slice_acceptance",
    "decision_threshold",
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

    ``passed`` judges ``judged_value``: the point estimate (``judged == "point"``) or
    the pessimistic end of the bootstrap interval (``"interval"``: the lower bound of a
    ``>=`` criterion, the upper bound of a ``<=`` one). ``conclusive`` says whether the
    whole interval lies on the same side of the threshold (None without interval).
    ``attribute`` names the protected attribute of a fairness criterion; ``slice`` and
    ``level`` the slice column and level of a per-slice criterion. Criteria stored
    before ``judged`` existed judged the point estimate.
    """

    metric: str
    threshold: str
    observed: float | None
    interval: tuple[float, float] | None
    passed: bool
    attribute: str | None = None
    conclusive: bool | None = None
    note: str = ""
    judged: str = "point"
    judged_value: float | None = None
    slice: str | None = None
    level: str | None = None
    n: int | None = None

    @property
    def label(self) -> str:
        """The metric with its attribute or slice level, e.g. ``recall [plan=pro]``."""
        if self.slice is not None:
            return f"{self.metric} [{self.slice}={self.level}]"
        return f"{self.metric} [{self.attribute}]" if self.attribute else self.metric

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
            "judged": self.judged,
            "judged_value": self.judged_value,
            "slice": self.slice,
            "level": self.level,
            "n": self.n,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Criterion:
        """Inverse of :meth:`to_dict` (records without the newer fields judged the point)."""
        interval = data.get("interval")
        judged_value = data.get("judged_value", data.get("observed"))
        return cls(**{**data, "interval": tuple(interval) if interval is not None else None,
                      "judged": data.get("judged", "point"), "judged_value": judged_value})


@dataclass(frozen=True)
class Evaluation:
    """Everything measured about one model on one set of rows.

    ``recalibration`` says what recalibrating the chosen classifier changed (its
    calibration ECE before and after); ``mitigation`` compares the chosen model with its
    fairness-mitigated alternatives. Both are None when that stage did not run.
    """

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
    recalibration: Recalibration | None = None
    mitigation: MitigationComparison | None = None
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
            "recalibration": self.recalibration.to_dict() if self.recalibration else None,
            "mitigation": self.mitigation.to_dict() if self.mitigation else None,
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
            recalibration=opt("recalibration", Recalibration.from_dict),
            mitigation=opt("mitigation", MitigationComparison.from_dict),
            plausibility=opt("plausibility", PlausibilityReport.from_dict),
        )


def check_acceptance(
    evaluation: Evaluation,
    thresholds: Mapping[str, AcceptanceThreshold | str],
    on: str = "point",
) -> list[Criterion]:
    """One :class:`Criterion` per threshold; a metric that was not computed fails.

    ``on="interval"`` judges the pessimistic end of the metric's bootstrap interval
    (the lower bound of a ``>=`` criterion, the upper bound of a ``<=`` one), so a
    model passes only when the whole interval clears the threshold; a metric without
    an interval is judged on its point estimate (and says so). ``on="point"`` judges
    the point estimate.

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
        out.append(_criterion(name, threshold, observed, interval, None, on=on))
    return out


def check_slice_acceptance(
    evaluation: Evaluation,
    thresholds: Mapping[str, Mapping[str, AcceptanceThreshold | str]],
    on: str = "point",
) -> list[Criterion]:
    """One :class:`Criterion` per slice level and criterion of ``thresholds`` (by column).

    Levels are judged as :func:`check_acceptance` judges the whole test set (``on``),
    on the level's bootstrap interval when it has one. A level with fewer test rows
    than the slice minimum is reported with the note ``too few rows`` and does not
    fail; a slice that was not evaluated, or a metric undefined on a level, fails.
    """
    reports = {report.column: report for report in evaluation.slices}
    out: list[Criterion] = []
    for column, criteria in thresholds.items():
        report = reports.get(column)
        for name, raw in criteria.items():
            threshold = _parse(raw, f"slices.{column}.acceptance.{name}")
            if report is None or not report.levels:
                out.append(Criterion(
                    name, str(threshold), None, None, False, slice=column, level="*",
                    note=f"slice '{column}' was not evaluated on the test rows",
                ))
                continue
            for level in report.levels:
                value = level.metrics.get(name)
                if not level.reliable:
                    out.append(Criterion(
                        name, str(threshold), value, None, True, slice=column,
                        level=level.level, n=level.n, judged_value=value,
                        note=f"too few rows ({level.n}) to judge this level",
                    ))
                    continue
                criterion = _criterion(
                    name, threshold, value, level.intervals.get(name), None, on=on
                )
                out.append(replace(criterion, slice=column, level=level.level, n=level.n))
    return out


def check_fairness(
    evaluation: Evaluation, limits: Mapping[str, AcceptanceThreshold | str]
) -> list[Criterion]:
    """Each limit checked on every protected attribute (one :class:`Criterion` each).

    A limit with no attribute to check, or with an undefined value, fails rather than
    passing silently.

    Raises:
        ConfigError: a limit name the task does not have, or a limit that does not parse.
    """
    valid = fairness_limits_for(evaluation.task)
    out = []
    for name, raw in limits.items():
        key = f"fairness.limits.{name}"
        if name not in valid:
            raise ConfigError(
                f"'{name}' is not a fairness limit of a {evaluation.task} task",
                key=key,
                expected="one of: " + ", ".join(valid),
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
    *,
    on: str = "point",
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
            judged=on,
        )
    judged, value, note = "point", observed, ""
    if on == "interval":
        if interval is not None:
            judged = "interval"
            value = interval[0] if threshold.op in (">=", ">") else interval[1]
        else:
            note = "no bootstrap interval: judged on the point estimate"
    passed = threshold.holds(value)
    conclusive = None
    if interval is not None:
        conclusive = threshold.holds(interval[0]) == threshold.holds(interval[1])
    return Criterion(
        name, str(threshold), observed, interval, passed, attribute, conclusive, note,
        judged=judged, judged_value=value,
    )


def decision_threshold(model: Any) -> float | None:
    """The tuned decision threshold a binary model decides at (its ``threshold_`` or
    ``threshold`` attribute), or None when it predicts the more probable class."""
    for name in ("threshold_", "threshold"):
        value = getattr(model, name, None)
        if isinstance(value, (int, float, np.floating)) and not isinstance(value, bool):
            if math.isfinite(float(value)) and 0.0 <= float(value) <= 1.0:
                return float(value)
    return None


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
    served: ServedPath | None = None,
    latency_sla_ms: float | None = None,
    slice_interval_metrics: Sequence[str] = (),
) -> Evaluation:
    """Evaluate a fitted model on the rows ``X`` with labels ``y``.

    Args:
        model: a fitted scikit-learn-compatible estimator taking the raw feature frame
            (``predict``; ``predict_proba`` and ``classes_`` for classifiers).
        metrics: the metric names to report; all of the task's when None.
        slices, protected: extra columns aligned with ``X`` by position.
        X_reference: the training features (noise scales, ranges and known levels for
            robustness).
        primary: the metric robustness is measured with (default: the task's primary
            when reported, else the first of ``metrics``).
        n_boot: bootstrap resamples for the intervals (0 to skip them).
        check_robustness, time_latency: switch off the slower probes.
        text_columns: free-text columns of ``X``. Each adds a slice by length (texts up to
            the median word count are ``short``, the rest ``long``), the text cases of
            robustness (typos, casing, punctuation, truncation), and latency is timed on
            batches of 32 texts, the size a server gathers, rather than 1,000 rows.
        served: the call the server makes for one record (the fast path when the model
            has one); single-row latency times it. Without it, ``predict_proba`` or
            ``predict`` on a one-row frame.
        latency_sla_ms: the single-row p99 objective; a measurement over it is taken
            again before it is reported (see :func:`measure_latency`).
        slice_interval_metrics: metrics that get bootstrap intervals on every reliable
            slice level (those per-slice acceptance criteria name).
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
    curves = build_curves(task, yt, pred, proba, classes or None, seed=seed,
                          threshold=decision_threshold(model) if task == "binary" else None)
    slices = _with_length_slices(slices, X, text_columns)
    slice_reports: tuple[SliceReport, ...] = ()
    if slices is not None and len(slices.columns):
        slice_reports = slice_metrics(
            task, yt, pred, slices, proba, classes or None, names, min_slice_size,
            interval_metrics=[m for m in slice_interval_metrics if m in names],
            n_boot=n_boot, seed=seed,
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
        sizes = (
            {"n_single": 50, "batch_size": 32, "rounds": 3, "warmup": 5} if text_columns else {}
        )
        latency = measure_latency(
            model, X, seed=seed, served=served, sla_ms=latency_sla_ms, **sizes
        )
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
