"""Recalibrating a fitted classifier's probabilities on the validation rows.

:func:`recalibrate` measures the chosen classifier's expected calibration error (ECE)
on the validation rows; above ``calibration.max_ece`` it fits scikit-learn's
``CalibratedClassifierCV`` (isotonic or sigmoid) on the model's frozen validation
probabilities and keeps the recalibrated model when it lowers the ECE measured out of
fold (each fold of the validation rows scored by a calibrator fitted on the others), so
the decision is not judged on the rows the calibrator learned from. The test rows are
never used here.

:class:`RecalibratedClassifier` leaves the decisions to the wrapped model (``predict``
is unchanged, so a tuned decision threshold stays) and maps ``predict_proba`` through
the calibrator; it is a plain picklable scikit-learn estimator that serving loads like
any other.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from assay.evaluate.calibration import Recalibration, probability_ece

__all__ = ["CALIBRATION_FOLDS", "RecalibratedClassifier", "fit_calibrator", "recalibrate"]

#: folds of the validation rows the out-of-fold ECE is measured on
CALIBRATION_FOLDS = 5
#: fewest validation rows of each class a calibrator is fitted on
MIN_ROWS_PER_CLASS = 5

CalibrationMethod = Literal["isotonic", "sigmoid"]


class _ProbabilityColumns(ClassifierMixin, BaseEstimator):
    """A classifier whose input is already its class probabilities (one column per class).

    It lets ``CalibratedClassifierCV`` learn a map from probabilities to probabilities,
    so the wrapped model scores the validation rows once.
    """

    def __init__(self, classes: Any = None) -> None:
        self.classes = classes

    def fit(self, X: Any, y: Any = None) -> _ProbabilityColumns:
        """Remember the classes (the probabilities need no fitting)."""
        # the classes' own dtype: integer labels held as objects do not match integer y
        self.classes_ = np.asarray(self.classes)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """The input itself."""
        return np.asarray(X, dtype=float)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class."""
        return np.asarray(self.classes_[np.argmax(np.asarray(X, dtype=float), axis=1)])


def fit_calibrator(
    proba: np.ndarray, y: Any, classes: Any, method: CalibrationMethod
) -> CalibratedClassifierCV:
    """A calibrator of probability columns ``proba`` (in ``classes`` order), fitted on ``y``."""
    columns = _ProbabilityColumns(list(classes)).fit(proba)
    calibrator = CalibratedClassifierCV(FrozenEstimator(columns), method=method)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calibrator.fit(np.asarray(proba, dtype=float), np.asarray(y))
    return calibrator


class RecalibratedClassifier(ClassifierMixin, BaseEstimator):
    """A fitted classifier with calibrated probabilities and its own decisions.

    Args:
        estimator: the fitted classifier (``predict``, ``predict_proba``, ``classes_``).
        calibrator: a calibrator of its probability columns (see :func:`fit_calibrator`).
        method: the calibrator's method, for the record.
    """

    def __init__(self, estimator: Any = None, calibrator: Any = None, method: str = "") -> None:
        self.estimator = estimator
        self.calibrator = calibrator
        self.method = method

    def fit(self, X: Any, y: Any) -> RecalibratedClassifier:
        """Fit the calibrator on the rows ``X, y`` (the estimator stays as fitted)."""
        classes = self.estimator.classes_
        self.calibrator = fit_calibrator(
            self.estimator.predict_proba(X), y, classes, _method(self.method)
        )
        return self

    @property
    def classes_(self) -> np.ndarray:
        """The wrapped classifier's classes."""
        return np.asarray(self.estimator.classes_)

    @property
    def prefers_batches_(self) -> bool:
        """Whether the wrapped model prefers many rows per call."""
        return getattr(self.estimator, "prefers_batches_", False) is True

    def predict(self, X: Any) -> np.ndarray:
        """The wrapped model's decisions (recalibration does not move them)."""
        return np.asarray(self.estimator.predict(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """The wrapped model's probabilities, calibrated."""
        check_is_fitted(self.calibrator)
        raw = np.asarray(self.estimator.predict_proba(X), dtype=float)
        return np.asarray(self.calibrator.predict_proba(raw), dtype=float)


def _method(name: str) -> CalibrationMethod:
    return "sigmoid" if name == "sigmoid" else "isotonic"


def _out_of_fold(
    proba: np.ndarray, y: np.ndarray, classes: Any, method: CalibrationMethod, seed: int
) -> np.ndarray:
    out = np.empty_like(proba)
    folds = StratifiedKFold(n_splits=CALIBRATION_FOLDS, shuffle=True, random_state=seed)
    for fit_idx, score_idx in folds.split(proba, y):
        calibrator = fit_calibrator(proba[fit_idx], y[fit_idx], classes, method)
        out[score_idx] = calibrator.predict_proba(proba[score_idx])
    return out


def recalibrate(
    model: Any,
    X_validation: Any,
    y_validation: Any,
    *,
    max_ece: float,
    method: Literal["auto", "isotonic", "sigmoid"] = "auto",
    seed: int = 0,
    scorer: Any = None,
) -> tuple[Any, Recalibration]:
    """The model to register (``model`` itself, or it recalibrated) and what was decided.

    Args:
        model: the chosen fitted classifier.
        X_validation, y_validation: the validation rows (never the test rows).
        max_ece: the limit; within it on the validation rows, nothing changes.
        method: ``isotonic``, ``sigmoid``, or ``auto`` (the one with the lower out-of-fold ECE).
        scorer: the model whose validation probabilities the calibrator learns from
            (default ``model``); a model refitted on training + validation rows passes its
            search-time fit, which has not seen the validation rows.
    """
    classes = list(model.classes_)
    y = np.asarray(y_validation)
    proba = np.asarray((scorer or model).predict_proba(X_validation), dtype=float)
    before = probability_ece(y, proba, classes)
    if before is None or before <= max_ece:
        return model, Recalibration(
            max_ece, "", False, before, None,
            note="within the limit on the validation rows: not recalibrated",
        )
    counts = [int((y == c).sum()) for c in classes]
    if min(counts) < max(MIN_ROWS_PER_CLASS, CALIBRATION_FOLDS):
        return model, Recalibration(
            max_ece, "", False, before, None,
            note=f"too few validation rows of some class ({min(counts)}) to fit a calibrator",
        )
    methods: list[CalibrationMethod] = (
        ["isotonic", "sigmoid"] if method == "auto" else [_method(method)]
    )
    scores = {m: probability_ece(y, _out_of_fold(proba, y, classes, m, seed), classes) for m in methods}
    best = min(methods, key=lambda m: np.inf if scores[m] is None else float(scores[m] or 0.0))
    after = scores[best]
    note = (
        "auto: " + ", ".join(f"{m} {scores[m]:.4f}" for m in methods if scores[m] is not None)
        if method == "auto"
        else ""
    )
    if after is None or after >= before:
        return model, Recalibration(
            max_ece, best, False, before, after,
            note=(note + "; " if note else "") + "recalibration did not lower the validation "
            "ECE (out of fold): the model is kept as fitted",
        )
    wrapped = RecalibratedClassifier(model, fit_calibrator(proba, y, classes, best), best)
    return wrapped, Recalibration(max_ece, best, True, before, after, note=note)
