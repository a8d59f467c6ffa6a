"""Ensembles of cross-validated candidates: greedy selection on out-of-fold predictions.

On small data the search scores its best configurations by K-fold cross-validation
(:meth:`assay.train.scheduler.SearchScheduler.cross_validate`), which leaves one out-of-fold
prediction per row and candidate: class probabilities for a classifier, values for
a regressor. :func:`select_blend` builds a weighted average of candidates from
them by greedy forward selection with replacement: start empty, add at each step the
candidate (possibly one already in) whose addition gives the best out-of-fold score,
and keep the best prefix of the steps. A candidate added ``k`` times of ``n`` weighs
``k / n``: the weights are non-negative and sum to one. Ties go to the earlier
candidate, so the result is deterministic.

The blend is scored as the candidates are: the mean over the folds of the primary
metric on each fold's rows. With a tuned decision threshold (binary F1, ...), every
blend, single candidates included, is scored at the threshold chosen on its
out-of-fold probabilities, so a blend and a single model are compared on the same
footing. The search keeps the blend only when it beats the best single candidate.

:class:`EnsembleClassifier` and :class:`EnsembleRegressor` are the fitted blends:
scikit-learn estimators (``fit``, ``predict``, ``predict_proba``, ``classes_``,
clonable, picklable) whose members are unfitted estimators and whose ``fit`` fits a
clone of each.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, RegressorMixin, clone
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from assay.train.objective import ThresholdMetric, choose_threshold
from assay.train.pipeline import StepCallback, fit_model
from assay.train.scoring import PROBABILITY_METRICS, score_predictions

__all__ = [
    "ENSEMBLE_STEPS",
    "Blend",
    "EnsembleClassifier",
    "EnsembleRegressor",
    "OutOfFoldScorer",
    "aligned_proba",
    "clear_gain",
    "fitted_ensemble",
    "rank_auc",
    "select_blend",
]

#: greedy steps at most (weights are multiples of 1 / steps)
ENSEMBLE_STEPS = 25
#: steps in a row without a better blend before the selection stops
ENSEMBLE_PATIENCE = 8


def aligned_proba(proba: Any, classes: Any, wanted: np.ndarray) -> np.ndarray:
    """Probability columns reordered to ``wanted`` (a class the model lacks gets 0)."""
    proba = np.asarray(proba, dtype=float)
    have = list(np.asarray(classes))
    if have == list(wanted):
        return np.asarray(proba)
    out = np.zeros((proba.shape[0], len(wanted)))
    for j, cls in enumerate(wanted):
        if cls in have:
            out[:, j] = proba[:, have.index(cls)]
    return out


@dataclass(frozen=True)
class OutOfFoldScorer:
    """The primary metric of out-of-fold predictions: the mean of the folds' values.

    Attributes:
        metric: the primary metric.
        y: the labels of every row.
        folds: the rows each fold scores (together, every row once).
        classes: the class order of probability columns (``None``: regression).
        threshold_metric: a binary task's tuned threshold metric, or ``None`` (argmax).
    """

    metric: str
    y: np.ndarray
    folds: tuple[np.ndarray, ...]
    classes: np.ndarray | None = None
    threshold_metric: ThresholdMetric | None = None

    def threshold(self, prediction: np.ndarray) -> float | None:
        """The decision threshold chosen on these probabilities (``None``: argmax)."""
        if self.classes is None or self.threshold_metric is None or len(self.classes) != 2:
            return None
        positive = self.y == self.classes[1]
        return choose_threshold(self.threshold_metric, positive, prediction[:, 1])[0]

    def labels(self, prediction: np.ndarray, threshold: float | None) -> np.ndarray:
        """Predicted labels or values from a prediction (probabilities for a classifier)."""
        if self.classes is None:
            return np.asarray(prediction)
        if threshold is not None:
            return np.asarray(
                np.where(prediction[:, 1] >= threshold, self.classes[1], self.classes[0])
            )
        return np.asarray(self.classes[np.argmax(prediction, axis=1)])

    def __call__(self, prediction: np.ndarray) -> float:
        """The mean fold score of ``prediction`` (one row per labelled row)."""
        return float(np.mean(self.fold_values(prediction)))

    def fold_values(self, prediction: np.ndarray) -> list[float]:
        """The metric on each fold's rows."""
        if self.metric in ("roc_auc", "roc_auc_ovr") and self.classes is not None:
            # the greedy selection scores hundreds of blends: ranks instead of sklearn's curve
            columns = [len(self.classes) - 1] if self.metric == "roc_auc" else None
            return [_auc(prediction[rows], self.y[rows], self.classes, columns)
                    for rows in self.folds]
        if self.metric in PROBABILITY_METRICS:
            return [
                score_predictions(
                    self.metric, self.y[rows], proba=prediction[rows], classes=self.classes
                )
                for rows in self.folds
            ]
        labels = self.labels(prediction, self.threshold(prediction))
        return [
            score_predictions(self.metric, self.y[rows], y_pred=labels[rows], classes=self.classes)
            for rows in self.folds
        ]


def _auc(proba: np.ndarray, y: np.ndarray, classes: np.ndarray, columns: list[int] | None) -> float:
    """ROC AUC (``columns``: the positive column) or the macro one-vs-rest AUC."""
    values = []
    for k in range(len(classes)) if columns is None else columns:
        hit = y == classes[k]
        if hit.any() and (~hit).any():
            values.append(rank_auc(hit, proba[:, k]))
    return float(np.mean(values)) if values else float("nan")


def rank_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """The area under the ROC curve from ranks (ties share their mean rank)."""
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    sorted_scores = score[order]
    # mean rank of each run of equal scores
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(score)]
    mean_rank = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(mean_rank, ends - starts)
    n_pos = int(positive.sum())
    n_neg = len(score) - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


@dataclass(frozen=True)
class Blend:
    """The outcome of :func:`select_blend`.

    Attributes:
        weights: one per candidate, non-negative, summing to one.
        value: the blend's out-of-fold score.
        single: the index of the best single candidate.
        single_value: that candidate's out-of-fold score, scored the same way.
        higher_is_better: the direction of the scores.
    """

    weights: tuple[float, ...]
    value: float
    single: int
    single_value: float
    higher_is_better: bool

    @property
    def members(self) -> list[int]:
        """The candidates with a positive weight, in candidate order."""
        return [i for i, w in enumerate(self.weights) if w > 0]

    @property
    def improves(self) -> bool:
        """True when the blend has several members and beats the best single candidate."""
        sign = 1.0 if self.higher_is_better else -1.0
        return len(self.members) > 1 and sign * (self.value - self.single_value) > 0


def select_blend(
    predictions: Sequence[np.ndarray],
    score: Callable[[np.ndarray], float],
    *,
    higher_is_better: bool,
    steps: int = ENSEMBLE_STEPS,
    patience: int = ENSEMBLE_PATIENCE,
) -> Blend:
    """Greedy forward selection with replacement of a weighted average of candidates.

    Args:
        predictions: each candidate's out-of-fold predictions (same shape for all).
        score: the score of a prediction of that shape (e.g. :class:`OutOfFoldScorer`).
        higher_is_better: the direction of ``score``.
        steps: additions at most.
        patience: stop after this many additions in a row without a better blend.

    Raises:
        ValueError: no candidate, or candidates of different shapes.
    """
    if not predictions:
        raise ValueError("an ensemble needs at least one candidate")
    shape = np.shape(predictions[0])
    if any(np.shape(p) != shape for p in predictions):
        raise ValueError("every candidate's out-of-fold predictions must have the same shape")
    preds = [np.asarray(p, dtype=float) for p in predictions]
    sign = 1.0 if higher_is_better else -1.0
    counts = np.zeros(len(preds), dtype=int)
    total = np.zeros(shape)
    best_value, best_counts, stale = -np.inf, counts.copy(), 0
    single, single_value = 0, float("nan")
    for step in range(max(1, steps)):
        values = [sign * score((total + p) / (step + 1)) for p in preds]
        values = [v if np.isfinite(v) else -np.inf for v in values]
        pick = int(np.argmax(values))  # the first of equal values
        if step == 0:
            single, single_value = pick, sign * values[pick]
        counts[pick] += 1
        total += preds[pick]
        if step == 0 or values[pick] > best_value + 1e-12 * max(1.0, abs(best_value)):
            best_value, best_counts, stale = values[pick], counts.copy(), 0
        else:
            stale += 1
            if stale >= patience:
                break
    weights = best_counts / best_counts.sum()
    return Blend(
        weights=tuple(float(w) for w in weights),
        value=float(sign * best_value),
        single=single,
        single_value=float(single_value),
        higher_is_better=higher_is_better,
    )


def clear_gain(blend_folds: Sequence[float], single_folds: Sequence[float], *,
               higher_is_better: bool) -> bool:
    """True when a blend's gain over a single model exceeds one standard error.

    The gain is the mean of the per-fold differences (in the metric's direction);
    its standard error is their standard deviation over the square root of the
    fold count. A blend costs prediction time for every member, so a gain within
    the folds' noise does not justify it.
    """
    sign = 1.0 if higher_is_better else -1.0
    diff = sign * (np.asarray(blend_folds, dtype=float) - np.asarray(single_folds, dtype=float))
    if diff.size < 2 or not np.all(np.isfinite(diff)):
        return False
    return bool(diff.mean() > diff.std(ddof=1) / np.sqrt(diff.size))


def _check_weights(members: Sequence[Any], weights: Sequence[float]) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    if len(members) == 0:
        raise ValueError("an ensemble needs at least one member")
    if w.shape != (len(members),):
        raise ValueError(f"an ensemble needs one weight per member: {len(members)} members, "
                         f"{w.size} weights")
    if not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"ensemble weights must be non-negative with a positive sum, got {w}")
    return np.asarray(w / w.sum())


class _Ensemble(MetaEstimatorMixin, BaseEstimator):
    """The shared part of the two ensembles: members, weights, fit, shared preprocessing."""

    def __init__(self, members: Sequence[Any], weights: Sequence[float]) -> None:
        self.members = members
        self.weights = weights

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        eval_set: tuple[Any, Any] | None = None,
        on_step: StepCallback | None = None,
    ) -> _Ensemble:
        """Fit a clone of each member on ``X, y`` (``eval_set`` goes to each member).

        ``on_step`` is not forwarded: the members' losses are not one curve.
        """
        self.weights_ = _check_weights(self.members, self.weights)
        self._set_classes(y)
        fitted = [fit_model(clone(member), X, y, eval_set=eval_set) for member in self.members]
        self._set_estimators(fitted)
        return self

    def _set_classes(self, y: Any) -> None:
        """Record what ``y`` says about the outputs (classes for a classifier)."""

    def _set_estimators(self, fitted: Sequence[Any]) -> None:
        """Keep the fitted members, grouped by identical fitted preprocessing.

        Members fitted on the same rows with the same preprocessing settings hold
        the same fitted transformers (the same pickled bytes); a prediction then
        transforms the rows once per group, not once per member.
        """
        self.estimators_ = list(fitted)
        groups: dict[bytes, tuple[Any, list[tuple[int, Any]]]] = {}
        for i, model in enumerate(self.estimators_):
            if isinstance(model, Pipeline) and len(model.steps) > 1:
                head: Any = Pipeline(model.steps[:-1])
                final = model.steps[-1][1]
                key = pickle.dumps(head, protocol=5)
            else:
                head, final, key = None, model, f"member {i}".encode()
            groups.setdefault(key, (head, []))[1].append((i, final))
        self.groups_ = list(groups.values())

    def _outputs(self, X: Any, method: str) -> list[tuple[int, Any, np.ndarray]]:
        """``(member index, final model, output of method)`` of each weighted member."""
        check_is_fitted(self, "estimators_")
        out: list[tuple[int, Any, np.ndarray]] = []
        for head, finals in self.groups_:
            weighted = [(i, f) for i, f in finals if self.weights_[i] > 0]
            if not weighted:
                continue
            Xt = X if head is None else head.transform(X)
            out.extend((i, f, np.asarray(getattr(f, method)(Xt))) for i, f in weighted)
        return out


class EnsembleClassifier(ClassifierMixin, _Ensemble):
    """A weighted average of classifiers' probabilities.

    Args:
        members: unfitted classifiers with ``predict_proba``.
        weights: one non-negative weight per member (normalised to sum to one).
        threshold: for two classes, the positive class is predicted where its
            averaged probability reaches this; ``None``: the most probable class.
    """

    def __init__(
        self, members: Sequence[Any], weights: Sequence[float], threshold: float | None = None
    ) -> None:
        super().__init__(members, weights)
        self.threshold = threshold

    def _set_classes(self, y: Any) -> None:
        self.classes_ = np.unique(np.asarray(y))

    def predict_proba(self, X: Any) -> np.ndarray:
        """The weighted mean of the members' probabilities (columns in ``classes_`` order)."""
        total = np.zeros((len(X), len(self.classes_)))
        for i, model, proba in self._outputs(X, "predict_proba"):
            total += self.weights_[i] * aligned_proba(proba, model.classes_, self.classes_)
        return total

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class, or the threshold rule for two classes."""
        proba = self.predict_proba(X)
        if self.threshold is not None and len(self.classes_) == 2:
            positive = proba[:, 1] >= self.threshold
            return np.asarray(np.where(positive, self.classes_[1], self.classes_[0]))
        return np.asarray(self.classes_[np.argmax(proba, axis=1)])


class EnsembleRegressor(RegressorMixin, _Ensemble):
    """A weighted average of regressors' predictions.

    Args:
        members: unfitted regressors.
        weights: one non-negative weight per member (normalised to sum to one).
    """

    def predict(self, X: Any) -> np.ndarray:
        """The weighted mean of the members' predictions."""
        total = np.zeros(len(X))
        for i, _, values in self._outputs(X, "predict"):
            total += self.weights_[i] * values.astype(float).ravel()
        return total


def fitted_ensemble(
    members: Sequence[Any],
    fitted: Sequence[Any],
    weights: Sequence[float],
    *,
    classes: Any = None,
    threshold: float | None = None,
) -> EnsembleClassifier | EnsembleRegressor:
    """An ensemble of members fitted elsewhere (``classes``: a classifier's, else regression).

    Args:
        members: the unfitted members (what ``clone`` + ``fit`` would fit again).
        fitted: the same members, fitted on the same rows.
        weights: one non-negative weight per member.
        classes: the classes the members were fitted on; ``None`` for regressors.
        threshold: a binary classifier's decision threshold.

    Raises:
        ValueError: bad weights, or not one fitted model per member.
    """
    if len(fitted) != len(members):
        raise ValueError(f"{len(members)} members but {len(fitted)} fitted models")
    model: EnsembleClassifier | EnsembleRegressor
    if classes is None:
        model = EnsembleRegressor(list(members), list(weights))
    else:
        model = EnsembleClassifier(list(members), list(weights), threshold=threshold)
        model.classes_ = np.asarray(classes)
    model.weights_ = _check_weights(members, weights)
    model._set_estimators(fitted)
    return model
