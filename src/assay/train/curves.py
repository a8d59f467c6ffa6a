"""Learning curves and their diagnosis: over-fitting, under-fitting, or good.

A curve is a metric on the training rows and on the validation rows, measured per
epoch (neural nets), per boosting round (trees) or per training-set size (models
fitted in one go, such as linear models). :func:`diagnose` reads it:

* **overfitting**: the final train-validation gap is large and, for iterative
  curves, validation has worsened from its best (for a train-size curve a large
  gap at full size is enough);
* **underfitting**: the validation score is close to the dummy baseline, or train
  and validation are close and still improving at the last epoch/round;
* **good** otherwise.

Gaps are absolute for metrics bounded on [0, 1] (accuracy, AUC, F1, R2, ...) and
relative to the larger value for unbounded errors (log loss, MSE, MAE, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from assay.train.objective import ThresholdedClassifier
from assay.train.pipeline import fit_model
from assay.train.scoring import score_estimator

__all__ = [
    "CurveKind",
    "Diagnosis",
    "LearningCurve",
    "Verdict",
    "curve_from_estimator",
    "diagnose",
    "final_model",
    "learning_curve_for",
    "train_size_curve",
]

CurveKind = Literal["epoch", "boosting_round", "train_size"]
Verdict = Literal["overfitting", "underfitting", "good"]

#: unbounded error metrics, compared relatively; every other metric lives on [0, 1]
UNBOUNDED_METRICS: frozenset[str] = frozenset(
    {"log_loss", "mse", "mae", "rmse", "mape", "median_ae"}
)
_LIGHTGBM_METRICS = {
    "binary_logloss": "log_loss",
    "multi_logloss": "log_loss",
    "l2": "mse",
    "l1": "mae",
}


@dataclass(frozen=True)
class LearningCurve:
    """Train and validation values of ``metric`` at each step.

    Attributes:
        kind: ``epoch``, ``boosting_round`` or ``train_size`` (steps are row counts).
        metric: the metric name (``log_loss``, ``mse``, ``mae`` or a task metric).
        steps, train, validation: equal-length sequences.
    """

    kind: CurveKind
    metric: str
    steps: tuple[float, ...]
    train: tuple[float, ...]
    validation: tuple[float, ...]

    def __post_init__(self) -> None:
        if not (len(self.steps) == len(self.train) == len(self.validation)):
            raise ValueError(
                "a learning curve needs as many train and validation values as steps, got "
                f"{len(self.steps)} steps, {len(self.train)} train, {len(self.validation)} "
                "validation values"
            )
        if not self.steps:
            raise ValueError("a learning curve needs at least one step")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "kind": self.kind,
            "metric": self.metric,
            "steps": [float(s) for s in self.steps],
            "train": [float(v) for v in self.train],
            "validation": [float(v) for v in self.validation],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LearningCurve:
        """The inverse of :meth:`to_dict`."""
        return cls(
            kind=data["kind"],
            metric=data["metric"],
            steps=tuple(float(s) for s in data["steps"]),
            train=tuple(float(v) for v in data["train"]),
            validation=tuple(float(v) for v in data["validation"]),
        )


@dataclass(frozen=True)
class Diagnosis:
    """The verdict on a learning curve, the numbers behind it and what to do."""

    verdict: Verdict
    reason: str
    action: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "action": self.action,
            "evidence": dict(self.evidence),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Diagnosis:
        """The inverse of :meth:`to_dict`."""
        return cls(data["verdict"], data["reason"], data["action"], dict(data.get("evidence", {})))


_ACTIONS = {
    "overfitting": "Regularise more (stronger penalty, fewer leaves or more rows per leaf, more "
    "dropout or weight decay), stop earlier, or add training rows.",
    "baseline": "Check that the features carry signal about the target, add informative "
    "features, or give the model more capacity.",
    "improving": "Train longer (more epochs or rounds), raise the learning rate or the "
    "capacity, or weaken the regularisation.",
    "good": "No change needed: the model generalises about as well as it fits the training rows.",
}


def diagnose(
    curve: LearningCurve,
    higher_is_better: bool,
    *,
    baseline: float | None = None,
    gap_tolerance: float | None = None,
    worsening_tolerance: float = 0.02,
    improvement_tolerance: float = 0.01,
    baseline_tolerance: float = 0.02,
) -> Diagnosis:
    """Over-fitting, under-fitting or good, from a learning curve.

    Args:
        curve: the curve to read.
        higher_is_better: the direction of ``curve.metric``.
        baseline: the dummy model's validation value of the same metric, if known.
        gap_tolerance: a train-validation gap above this is large (default 0.1 for
            bounded metrics, absolute; 0.25 for unbounded errors, relative).
        worsening_tolerance: validation this far past its best has worsened.
        improvement_tolerance: improvement over the last fifth of the steps that
            counts as "still improving".
        baseline_tolerance: a best validation value within this of the baseline is
            "close to the baseline".
    """
    bounded = curve.metric not in UNBOUNDED_METRICS
    tolerance = gap_tolerance if gap_tolerance is not None else (0.1 if bounded else 0.25)
    train = np.asarray(curve.train, dtype=float)
    val = np.asarray(curve.validation, dtype=float)
    finite = np.isfinite(train) & np.isfinite(val)
    if not finite.any():
        raise ValueError("the learning curve holds no finite value")
    train, val = train[finite], val[finite]
    steps = np.asarray(curve.steps, dtype=float)[finite]
    sign = -1.0 if higher_is_better else 1.0  # loss orientation: lower is better
    best_i = int(np.argmin(sign * val))

    def worse(a: float, b: float) -> float:
        """How much ``a`` is worse than ``b``, scaled for the metric."""
        diff = sign * (a - b)
        if bounded:
            return float(diff)
        return float(diff / max(abs(a), abs(b), 1e-12))

    gap = worse(val[-1], train[-1])
    worsening = worse(val[-1], val[best_i])
    iterative = curve.kind != "train_size"
    tail = max(1, len(val) // 5)
    improving = bool(
        iterative
        and len(val) > 1
        and best_i == len(val) - 1
        and worse(val[-1 - tail], val[-1]) > improvement_tolerance
    )
    gain = None if baseline is None else worse(float(baseline), float(val[best_i]))
    evidence: dict[str, Any] = {
        "kind": curve.kind,
        "metric": curve.metric,
        "final_step": float(steps[-1]),
        "final_train": float(train[-1]),
        "final_validation": float(val[-1]),
        "best_step": float(steps[best_i]),
        "best_validation": float(val[best_i]),
        "gap": round(gap, 6),
        "worsening": round(worsening, 6),
        "improving_at_end": improving,
        "baseline": None if baseline is None else float(baseline),
        "gain_over_baseline": None if gain is None else round(gain, 6),
    }
    name = curve.metric
    if gain is not None and gain < baseline_tolerance:
        return Diagnosis(
            "underfitting",
            f"the best validation {name} ({val[best_i]:.4g}) is within {baseline_tolerance:g} "
            f"of the dummy baseline ({baseline:.4g})",
            _ACTIONS["baseline"],
            evidence,
        )
    if gap > tolerance and (not iterative or worsening > worsening_tolerance):
        where = (
            f"and validation worsened from its best ({val[best_i]:.4g} at step "
            f"{steps[best_i]:g}) to {val[-1]:.4g}"
            if iterative
            else "at the full training size"
        )
        return Diagnosis(
            "overfitting",
            f"train {name} {train[-1]:.4g} vs validation {val[-1]:.4g}: a gap of {gap:.3g} "
            f"(tolerance {tolerance:g}) {where}",
            _ACTIONS["overfitting"],
            evidence,
        )
    if improving and gap <= tolerance:
        return Diagnosis(
            "underfitting",
            f"train and validation {name} are close (gap {gap:.3g}) and validation was still "
            f"improving at the last step ({steps[-1]:g})",
            _ACTIONS["improving"],
            evidence,
        )
    return Diagnosis(
        "good",
        f"train {name} {train[-1]:.4g} vs validation {val[-1]:.4g} (gap {gap:.3g}, "
        f"tolerance {tolerance:g}); validation has settled",
        _ACTIONS["good"],
        evidence,
    )


def final_model(estimator: Any) -> Any:
    """The model inside threshold wrappers and pipelines."""
    while True:
        if isinstance(estimator, ThresholdedClassifier):
            estimator = getattr(estimator, "estimator_", estimator.estimator)
        elif isinstance(estimator, Pipeline):
            estimator = estimator.steps[-1][1]
        else:
            return estimator


def curve_from_estimator(estimator: Any) -> LearningCurve | None:
    """The curve a fitted iterative model recorded (epochs, boosting rounds), if any.

    Epoch curves come from any model with ``history_`` (``{"train": [...],
    "validation": [...]}``) and ``history_metric_``; boosting curves from LightGBM's
    ``evals_result_``. The metric is the validation loss (``log_loss``, ``mse`` or
    ``mae``). ``None`` when the model is not iterative or had no validation rows.
    """
    model = final_model(estimator)
    history = getattr(model, "history_", None)
    metric = getattr(model, "history_metric_", None)
    if isinstance(history, dict) and metric is not None:
        if not history.get("validation"):
            return None
        n = len(history["validation"])
        return LearningCurve(
            "epoch",
            str(metric),
            tuple(float(i) for i in range(1, n + 1)),
            tuple(float(v) for v in history["train"][:n]),
            tuple(float(v) for v in history["validation"]),
        )
    if isinstance(model, lgb.LGBMModel):
        results = getattr(model, "evals_result_", None) or {}
        if "validation" not in results or "training" not in results:
            return None
        raw = next(iter(results["validation"]))
        val = results["validation"][raw]
        return LearningCurve(
            "boosting_round",
            _LIGHTGBM_METRICS.get(raw, raw),
            tuple(float(i) for i in range(1, len(val) + 1)),
            tuple(float(v) for v in results["training"][raw]),
            tuple(float(v) for v in val),
        )
    return None


def train_size_curve(
    estimator: Any,
    X_train: Any,
    y_train: Any,
    X_val: Any,
    y_val: Any,
    *,
    metric: str,
    fractions: Sequence[float] = (0.2, 0.4, 0.6, 0.8, 1.0),
    seed: int = 0,
) -> LearningCurve:
    """Fit clones of ``estimator`` on growing shares of the training rows; score both sets.

    Subsets are independent random draws (stratified for classifiers) with ``seed``;
    a share too small to fit (e.g. one class) is left out.
    """
    y_arr = np.asarray(y_train)
    n = len(y_arr)
    steps: list[float] = []
    train: list[float] = []
    val: list[float] = []
    for frac in fractions:
        if frac >= 1.0:
            idx = np.arange(n)
        else:
            size = max(2, int(round(frac * n)))
            stratify = y_arr if is_classifier(estimator) else None
            try:
                idx, _ = train_test_split(
                    np.arange(n), train_size=size, random_state=seed, stratify=stratify
                )
            except ValueError:
                idx, _ = train_test_split(np.arange(n), train_size=size, random_state=seed)
            idx = np.sort(idx)
        X_sub = X_train.iloc[idx] if hasattr(X_train, "iloc") else X_train[idx]
        y_sub = y_arr[idx]
        try:
            model = fit_model(clone(estimator), X_sub, y_sub, eval_set=(X_val, y_val))
        except ValueError:
            continue
        steps.append(float(len(idx)))
        train.append(score_estimator(metric, model, X_sub, y_sub))
        val.append(score_estimator(metric, model, X_val, y_val))
    return LearningCurve("train_size", metric, tuple(steps), tuple(train), tuple(val))


def learning_curve_for(
    estimator: Any,
    X_train: Any,
    y_train: Any,
    X_val: Any,
    y_val: Any,
    *,
    metric: str,
    seed: int = 0,
) -> LearningCurve:
    """The recorded epoch/round curve of a fitted model, else a train-size curve on ``metric``."""
    curve = curve_from_estimator(estimator)
    if curve is not None:
        return curve
    return train_size_curve(estimator, X_train, y_train, X_val, y_val, metric=metric, seed=seed)
