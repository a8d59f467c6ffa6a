"""What the primary metric asks of training: loss, class weights, decision threshold.

A model trained with a default loss and judged on a different metric leaves
performance on the table: the median (not the mean) minimises absolute error, and
a classifier judged on F1 over a rare class needs class weights and a decision
threshold chosen for F1 rather than 0.5. :func:`objective_for` turns the task and
the primary metric into :class:`ObjectiveHints` that every model family honours.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

from assay.config.metrics import metrics_for
from assay.errors import ConfigError
from assay.train.pipeline import StepCallback, fit_model
from assay.train.scoring import score_predictions

__all__ = [
    "ObjectiveHints",
    "ThresholdMetric",
    "ThresholdedClassifier",
    "choose_threshold",
    "objective_for",
]

ThresholdMetric = Literal["f1", "f2", "f0.5", "balanced_accuracy"]

_L1_METRICS = frozenset({"mae", "median_ae"})
_BALANCED_METRICS = frozenset({"recall", "recall_macro", "f1", "f1_macro", "balanced_accuracy"})
# recall alone is maximised by calling every row positive and precision by calling
# almost none, so their thresholds are chosen on the F-beta that leans their way
_THRESHOLD_METRICS: dict[str, ThresholdMetric] = {
    "f1": "f1",
    "recall": "f2",
    "precision": "f0.5",
    "balanced_accuracy": "balanced_accuracy",
}


@dataclass(frozen=True)
class ObjectiveHints:
    """How training should bend towards the primary metric.

    Attributes:
        task: the task name.
        primary_metric: the metric that decides.
        loss: ``"l1"`` (predict the median) for mae/median_ae, else ``"default"``.
        balance_classes: weigh classes by inverse frequency (recall/F1/balanced accuracy).
        threshold_metric: for binary tasks, the metric the decision threshold is
            chosen on with validation predictions; ``None`` keeps argmax (0.5).
    """

    task: str
    primary_metric: str
    loss: Literal["default", "l1"] = "default"
    balance_classes: bool = False
    threshold_metric: ThresholdMetric | None = None

    @property
    def tune_threshold(self) -> bool:
        """True when the binary decision threshold is chosen on validation predictions."""
        return self.threshold_metric is not None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ObjectiveHints:
        """The inverse of :meth:`to_dict`."""
        return cls(**data)


def objective_for(task: str, primary_metric: str) -> ObjectiveHints:
    """The :class:`ObjectiveHints` for a task judged on ``primary_metric``."""
    try:
        valid = metrics_for(task)
    except KeyError:
        raise ConfigError(
            f"unknown task '{task}'",
            key="task",
            expected="binary, multiclass, regression or text-classification",
            received=task,
            fix="Set task to one of the supported tasks.",
        ) from None
    if primary_metric not in valid:
        raise ConfigError(
            f"'{primary_metric}' is not a {task} metric",
            key="metrics.primary",
            expected="one of: " + ", ".join(valid),
            received=primary_metric,
            fix="Choose a primary metric of the task.",
        )
    return ObjectiveHints(
        task=task,
        primary_metric=primary_metric,
        loss="l1" if primary_metric in _L1_METRICS else "default",
        balance_classes=primary_metric in _BALANCED_METRICS,
        threshold_metric=_THRESHOLD_METRICS.get(primary_metric) if task == "binary" else None,
    )


def _threshold_score(metric: ThresholdMetric, positive: np.ndarray, predicted: np.ndarray) -> float:
    if metric == "balanced_accuracy":
        return score_predictions("balanced_accuracy", positive, y_pred=predicted)
    beta = {"f1": 1.0, "f2": 2.0, "f0.5": 0.5}[metric]
    tp = float(np.sum(positive & predicted))
    fp = float(np.sum(~positive & predicted))
    fn = float(np.sum(positive & ~predicted))
    denom = (1 + beta**2) * tp + beta**2 * fn + fp
    return (1 + beta**2) * tp / denom if denom else 0.0


def choose_threshold(
    metric: ThresholdMetric, positive: Any, score: Any, max_candidates: int = 512
) -> tuple[float, float]:
    """The threshold on ``score`` that maximises ``metric``, and the metric there.

    Candidates are the distinct scores (at most ``max_candidates`` quantiles); a tie
    goes to the threshold nearest 0.5. One-class validation labels give 0.5.
    """
    pos = np.asarray(positive, dtype=bool)
    s = np.asarray(score, dtype=float)
    if pos.all() or not pos.any():
        return 0.5, float("nan")
    candidates = np.unique(s)
    if len(candidates) > max_candidates:
        candidates = np.unique(np.quantile(s, np.linspace(0, 1, max_candidates)))
    best_t, best_v = 0.5, -np.inf
    for t in candidates:
        v = _threshold_score(metric, pos, s >= t)
        if v > best_v + 1e-12 or (abs(v - best_v) <= 1e-12 and abs(t - 0.5) < abs(best_t - 0.5)):
            best_t, best_v = float(t), v
    return best_t, float(best_v)


class ThresholdedClassifier(ClassifierMixin, MetaEstimatorMixin, BaseEstimator):
    """A binary classifier whose decision threshold is chosen on validation predictions.

    ``fit(X, y, eval_set=(X_val, y_val))`` fits the inner estimator on ``X, y``
    (forwarding ``eval_set`` for early stopping) and picks the threshold on the
    validation probabilities. Without ``eval_set`` a stratified
    ``validation_fraction`` of the rows is held out for both purposes and the model
    is fitted on the rest (it is not refitted, so the threshold matches the model).
    ``predict`` uses ``threshold_``; ``predict_proba`` is the inner estimator's.

    Args:
        estimator: an unfitted binary classifier with ``predict_proba``.
        metric: what the threshold maximises: f1, f2 (recall-leaning), f0.5, balanced_accuracy.
        validation_fraction: held-out share when no ``eval_set`` is given.
        random_state: seed of that split.
    """

    def __init__(
        self,
        estimator: Any,
        metric: ThresholdMetric = "f1",
        *,
        validation_fraction: float = 0.2,
        random_state: int = 0,
    ) -> None:
        self.estimator = estimator
        self.metric = metric
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        eval_set: tuple[Any, Any] | None = None,
        on_step: StepCallback | None = None,
    ) -> ThresholdedClassifier:
        """Fit the inner estimator and choose ``threshold_`` on validation probabilities."""
        y_arr = np.asarray(y)
        self.classes_ = np.unique(y_arr)
        if len(self.classes_) != 2:
            raise ValueError(
                f"a decision threshold needs exactly two classes, got {len(self.classes_)}"
            )
        if eval_set is None:
            X, X_val, y_arr, y_val = train_test_split(
                X,
                y_arr,
                test_size=self.validation_fraction,
                random_state=self.random_state,
                stratify=y_arr,
            )
            eval_set = (X_val, y_val)
        self.estimator_ = fit_model(
            clone(self.estimator), X, y_arr, eval_set=eval_set, on_step=on_step
        )
        proba = self.estimator_.predict_proba(eval_set[0])[:, 1]
        positive = np.asarray(eval_set[1]) == self.classes_[1]
        self.threshold_, self.threshold_score_ = choose_threshold(self.metric, positive, proba)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """The inner estimator's probabilities (unchanged by the threshold)."""
        check_is_fitted(self, "estimator_")
        return np.asarray(self.estimator_.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """``classes_[1]`` where the positive probability reaches ``threshold_``."""
        positive = self.predict_proba(X)[:, 1] >= self.threshold_
        return np.asarray(np.where(positive, self.classes_[1], self.classes_[0]))
