"""Recalibration on the validation rows: a squashed model is repaired, a calibrated one is kept."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from assay.evaluate.calibration import Recalibration, probability_ece
from assay.train.calibration import RecalibratedClassifier, recalibrate


class SquashedClassifier(ClassifierMixin, BaseEstimator):
    """A logistic regression whose probabilities are pulled towards 0.5 (badly calibrated),
    with the logistic regression's own decisions."""

    def __init__(self, squash: float = 0.3) -> None:
        self.squash = squash

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> SquashedClassifier:
        self.inner_ = LogisticRegression().fit(X, y)
        self.classes_ = self.inner_.classes_
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = 0.5 + (self.inner_.predict_proba(X)[:, 1] - 0.5) * self.squash
        return np.c_[1 - p, p]

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.inner_.predict(X))


def _rows(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    p = 1 / (1 + np.exp(-(2.0 * X["a"] - X["b"])))
    return X, np.where(rng.random(n) < p, "yes", "no")


@pytest.fixture
def parts(seed: int) -> dict[str, tuple[pd.DataFrame, np.ndarray]]:
    return {"train": _rows(800, seed), "validation": _rows(800, seed + 1), "test": _rows(1500, seed + 2)}


def test_squashed_probabilities_are_recalibrated(parts) -> None:
    model = SquashedClassifier().fit(*parts["train"])
    new, record = recalibrate(model, *parts["validation"], max_ece=0.05, seed=0)
    X_test, y_test = parts["test"]
    before = probability_ece(y_test, model.predict_proba(X_test), model.classes_)
    after = probability_ece(y_test, new.predict_proba(X_test), new.classes_)
    assert isinstance(new, RecalibratedClassifier) and record.adopted
    assert record.method in ("isotonic", "sigmoid") and "auto:" in record.note
    assert record.validation_before > 0.1 and record.validation_after < record.validation_before
    assert before > 0.1 and after < before / 2
    # the decisions are the model's own; only the probabilities move
    assert (new.predict(X_test) == model.predict(X_test)).all()
    again = pickle.loads(pickle.dumps(new))
    assert np.allclose(again.predict_proba(X_test), new.predict_proba(X_test))
    assert Recalibration.from_dict(record.to_dict()) == record


def test_a_requested_method_is_used(parts) -> None:
    model = SquashedClassifier().fit(*parts["train"])
    _, record = recalibrate(model, *parts["validation"], max_ece=0.05, method="sigmoid")
    assert record.method == "sigmoid" and record.adopted and record.note == ""


def test_a_calibrated_model_is_left_alone(parts) -> None:
    model = LogisticRegression().fit(*parts["train"])
    new, record = recalibrate(model, *parts["validation"], max_ece=0.05)
    assert new is model and not record.adopted
    assert record.validation_before is not None and record.validation_before <= 0.05
    assert "within the limit" in record.note


def test_too_few_rows_of_a_class_keeps_the_model(parts) -> None:
    model = SquashedClassifier().fit(*parts["train"])
    X, y = parts["validation"]
    keep = np.r_[np.flatnonzero(y == "no"), np.flatnonzero(y == "yes")[:3]]
    new, record = recalibrate(model, X.iloc[keep], y[keep], max_ece=0.01)
    assert new is model and not record.adopted and "too few" in record.note


def test_probability_ece_matches_the_evaluation(parts) -> None:
    from assay.evaluate.curves import build_curves

    model = SquashedClassifier().fit(*parts["train"])
    X, y = parts["test"]
    proba = model.predict_proba(X)
    curves = build_curves("binary", y, model.predict(X), proba, list(model.classes_))
    assert curves.calibration is not None
    assert probability_ece(y, proba, model.classes_) == pytest.approx(curves.calibration.ece)
