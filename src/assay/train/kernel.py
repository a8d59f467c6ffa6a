"""Support-vector machines with an RBF kernel whose width follows the data's spread.

The kernel width is a multiple of scikit-learn's ``gamma="scale"``
(``1 / (n_features * X.var())``), computed on the training matrix at ``fit``. A
searched ``gamma_factor`` near 1 then suits any input width, where a raw ``gamma``
would have to be searched over decades that depend on the feature count.

* :class:`RBFSupportVectorClassifier` gives probabilities by Platt scaling: a
  sigmoid per class fitted on out-of-fold decision values (stratified five-fold,
  seeded by ``random_state``), then the SVM refitted on every row. It predicts the
  most probable class, so labels and probabilities never disagree (the SVM's own
  ``predict`` follows the decision function instead).
* :class:`RBFSupportVectorRegressor` fits the standardised target, so that ``C``
  and ``epsilon`` (in standard deviations of the target) mean the same on any
  target scale. The epsilon-insensitive loss grows linearly with the error, like an
  absolute loss, so one model serves squared and absolute metrics.

Both take the preprocessed matrix (sparse or dense). A kernel machine costs the
square of the training rows in time and memory; the model family that builds them
(:class:`assay.train.families.SVMFamily`) is skipped on large training sets.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC, SVR
from sklearn.utils.validation import check_is_fitted

__all__ = ["RBFSupportVectorClassifier", "RBFSupportVectorRegressor", "relative_gamma"]

#: libsvm's kernel cache in megabytes (its default of 200 is kept)
CACHE_MB = 200.0
#: folds of the out-of-fold decision values the probability sigmoids are fitted on
CALIBRATION_FOLDS = 5


def relative_gamma(X: Any, factor: float) -> float:
    """``factor`` times scikit-learn's ``"scale"`` kernel width for the matrix ``X``."""
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float64)
        mean = float(X.mean())
        variance = float(X.multiply(X).mean()) - mean * mean
    else:
        variance = float(np.var(np.asarray(X, dtype=np.float64)))
    n_features = max(int(X.shape[1]), 1)
    if not np.isfinite(variance) or variance <= 0.0:
        variance = 1.0
    return float(factor) / (n_features * variance)


class RBFSupportVectorClassifier(ClassifierMixin, BaseEstimator):
    """An RBF-kernel SVM classifier with Platt-scaled probabilities.

    Args:
        C: the penalty of margin violations (larger: a tighter fit).
        gamma_factor: the kernel width relative to ``gamma="scale"`` (larger: more local).
        class_weight: ``"balanced"`` weighs classes by inverse frequency.
        random_state: seeds the Platt scaling's folds.
    """

    def __init__(
        self,
        C: float = 1.0,
        gamma_factor: float = 1.0,
        class_weight: str | None = None,
        random_state: int | None = None,
    ) -> None:
        self.C = C
        self.gamma_factor = gamma_factor
        self.class_weight = class_weight
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> RBFSupportVectorClassifier:
        """Fit the probability sigmoids on out-of-fold decision values, then the SVM on all rows.

        Raises:
            ValueError: a class has a single row (its probability cannot be calibrated).
        """
        labels = np.asarray(y)
        counts = np.unique(labels, return_counts=True)[1]
        folds = min(CALIBRATION_FOLDS, int(counts.min()))
        if folds < 2:
            raise ValueError(
                "an SVM needs at least two rows of every class to calibrate its probabilities"
            )
        self.gamma_ = relative_gamma(X, self.gamma_factor)
        svm = SVC(
            C=float(self.C),
            kernel="rbf",
            gamma=self.gamma_,
            class_weight=self.class_weight,
            cache_size=CACHE_MB,
            random_state=self.random_state,
        )
        splitter = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
        self.model_ = CalibratedClassifierCV(svm, method="sigmoid", cv=splitter, ensemble=False)
        self.model_.fit(X, labels)
        self.classes_ = self.model_.classes_
        self.n_features_in_ = int(X.shape[1])
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, one column per class of ``classes_``."""
        check_is_fitted(self, "model_")
        return np.asarray(self.model_.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row."""
        return np.asarray(self.classes_[np.argmax(self.predict_proba(X), axis=1)])


class RBFSupportVectorRegressor(RegressorMixin, BaseEstimator):
    """An RBF-kernel support-vector regressor on the standardised target.

    Args:
        C: the penalty of errors beyond ``epsilon`` (larger: a tighter fit).
        gamma_factor: the kernel width relative to ``gamma="scale"``.
        epsilon: the error that costs nothing, in standard deviations of the target.
    """

    def __init__(self, C: float = 1.0, gamma_factor: float = 1.0, epsilon: float = 0.1) -> None:
        self.C = C
        self.gamma_factor = gamma_factor
        self.epsilon = epsilon

    def fit(self, X: Any, y: Any) -> RBFSupportVectorRegressor:
        """Fit the SVR on ``X`` and the standardised ``y``."""
        target = np.asarray(y, dtype=np.float64)
        self.y_mean_ = float(target.mean())
        spread = float(target.std())
        self.y_scale_ = spread if np.isfinite(spread) and spread > 0.0 else 1.0
        self.gamma_ = relative_gamma(X, self.gamma_factor)
        self.model_ = SVR(
            C=float(self.C),
            kernel="rbf",
            gamma=self.gamma_,
            epsilon=float(self.epsilon),
            cache_size=CACHE_MB,
        )
        self.model_.fit(X, (target - self.y_mean_) / self.y_scale_)
        self.n_features_in_ = int(X.shape[1])
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions on the target's own scale."""
        check_is_fitted(self, "model_")
        return np.asarray(self.model_.predict(X)) * self.y_scale_ + self.y_mean_
