"""Predictions with known properties, shared by the evaluation tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.datasets import make_classification
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


@pytest.fixture
def binary_predictions(seed: int) -> dict[str, np.ndarray]:
    """String labels ('no' < 'yes'), informative probabilities rounded to create ties."""
    rng = np.random.default_rng(seed)
    n = 400
    positive = rng.random(n) < 0.35
    score = np.clip(0.3 * positive + rng.normal(0.35, 0.2, n), 0.0, 1.0).round(2)
    return {
        "y_true": np.where(positive, "yes", "no"),
        "y_pred": np.where(score > 0.5, "yes", "no"),
        "proba": np.column_stack([1 - score, score]),
        "classes": np.array(["no", "yes"]),
    }


@pytest.fixture
def multiclass_predictions(seed: int) -> dict[str, np.ndarray]:
    """Three classes, probabilities that favour the true class."""
    rng = np.random.default_rng(seed)
    n = 300
    classes = np.array(["cat", "dog", "eel"])
    y = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3))
    logits[np.arange(n), y] += 1.2
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return {
        "y_true": classes[y],
        "y_pred": classes[proba.argmax(axis=1)],
        "proba": proba,
        "classes": classes,
    }


@pytest.fixture
def regression_predictions(seed: int) -> dict[str, np.ndarray]:
    """Strictly positive targets (so MAPE is defined) and noisy predictions."""
    rng = np.random.default_rng(seed)
    y = rng.uniform(1.0, 10.0, 300)
    return {"y_true": y, "y_pred": y + rng.normal(0.0, 1.0, 300)}


@pytest.fixture
def frame(seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Four numeric features, one integer and one categorical column, and a binary target."""
    n = 600
    X, y = make_classification(
        n_samples=n, n_features=4, n_informative=3, n_redundant=0, random_state=seed
    )
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    rng = np.random.default_rng(seed)
    frame["age"] = rng.integers(18, 80, n)
    frame["region"] = rng.choice(["north", "south", "east"], n)
    return frame, y


@pytest.fixture
def imputed_pipeline() -> Pipeline:
    """Logistic regression behind imputers, scaling and one-hot encoding."""
    numeric = make_pipeline(SimpleImputer(), StandardScaler())
    categorical = make_pipeline(
        SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
    )
    pre = make_column_transformer((numeric, ["a", "b", "c", "d", "age"]), (categorical, ["region"]))
    return make_pipeline(pre, LogisticRegression(max_iter=500))


@pytest.fixture
def fitted(
    frame: tuple[pd.DataFrame, np.ndarray], imputed_pipeline: Pipeline
) -> tuple[Pipeline, pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    """The imputing pipeline fitted on 400 rows: model, X_test, y_test, X_train, y_train."""
    X, y = frame
    model = imputed_pipeline.fit(X.iloc[:400], y[:400])
    return model, X.iloc[400:].reset_index(drop=True), y[400:], X.iloc[:400], y[:400]
