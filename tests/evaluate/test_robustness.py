"""Robustness: noise, missing features and out-of-range inputs never crash the evaluation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from assay.errors import ConfigError, DataError
from assay.evaluate import RobustnessReport, metric_value, robustness


def test_imputing_pipeline_answers_every_case(fitted, seed: int) -> None:
    model, X, y, X_train, _ = fitted
    report = robustness(model, X, y, "binary", "roc_auc", seed=seed, X_reference=X_train)
    assert report.all_answered, report.unanswered
    names = [c.name for c in report.cases]
    assert names[0] == "noise"
    assert {f"missing:{c}" for c in X.columns} <= set(names)
    assert {"out_of_range_high", "out_of_range_low"} <= set(names)
    assert report.clean == pytest.approx(
        metric_value("binary", "roc_auc", y, model.predict(X), model.predict_proba(X), [0, 1])
    )
    # 5 % noise barely moves a linear model
    assert abs(report.case("noise").relative_drop or 0.0) < 0.05
    assert report.worst_relative_drop == max(
        c.relative_drop for c in report.cases if c.kind != "out_of_range"
    )
    assert RobustnessReport.from_dict(report.to_dict()) == report


def test_the_feature_the_model_relies_on_is_worst(fitted, seed: int) -> None:
    model, X, y, X_train, _ = fitted
    report = robustness(model, X, y, "binary", "accuracy", seed=seed, X_reference=X_train)
    drops = {c.feature: c.drop for c in report.cases if c.kind == "missing"}
    assert report.worst_features[0] == max(drops, key=lambda f: drops[f] or 0.0)
    assert drops[report.worst_features[0]] > 0.05
    # the noise-only columns matter little
    assert abs(drops["age"] or 0.0) < 0.05 and abs(drops["region"] or 0.0) < 0.05


def test_model_without_imputer_is_recorded_as_not_answering(frame, seed: int) -> None:
    X, y = frame
    pre = make_column_transformer(
        (StandardScaler(), ["a", "b", "c", "d", "age"]), (OneHotEncoder(), ["region"])
    )
    model = make_pipeline(pre, LogisticRegression()).fit(X.iloc[:400], y[:400])
    report = robustness(model, X.iloc[400:], y[400:], "binary", "f1", seed=seed)
    missing_a = report.case("missing:a")
    assert not missing_a.answered
    assert missing_a.value is None
    assert "NaN" in (missing_a.error or "")
    assert "missing:a" in report.unanswered and not report.all_answered
    assert report.case("noise").answered  # other cases still run


class _RangeGuard:
    """A classifier that refuses values of 'a' beyond 20 (as some validators do)."""

    classes_ = np.array([0, 1])

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        if (X["a"] > 20).any():
            raise ValueError("feature 'a' out of range")
        p = 1 / (1 + np.exp(-X["a"].to_numpy()))
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] > 0.5).astype(int)


def test_out_of_range_failure_names_the_feature(frame, seed: int) -> None:
    X, y = frame
    report = robustness(_RangeGuard(), X, y, "binary", "accuracy", seed=seed)
    high = report.case("out_of_range_high")
    assert not high.answered and "out of range" in (high.error or "")
    assert report.case("out_of_range_high:a").feature == "a"
    assert not any(c.name == "out_of_range_high:b" for c in report.cases)
    assert report.case("out_of_range_low").answered


class _Exploding:
    """A regressor whose output overflows far outside the training range."""

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        with np.errstate(over="ignore"):
            return np.exp(X["a"].to_numpy() * 100.0)


def test_non_finite_outputs_count_as_not_answered(frame, seed: int) -> None:
    X, _ = frame
    y = np.exp(X["a"].to_numpy() * 100.0)
    report = robustness(_Exploding(), X[["a", "b"]], y, "regression", "mae", seed=seed)
    high = report.case("out_of_range_high")
    assert not high.answered and "non-finite" in (high.error or "")


def test_integer_columns_stay_integer_under_noise(seed: int) -> None:
    seen: list[Any] = []

    class _Spy:
        def predict(self, X: pd.DataFrame) -> np.ndarray:
            seen.append(X["n"].dtype)
            return X["n"].to_numpy(dtype=float)

    X = pd.DataFrame({"n": np.arange(200) % 50})
    robustness(_Spy(), X, X["n"].to_numpy(dtype=float), "regression", "mae", seed=seed)
    assert seen[1].kind == "i"  # the noise case


def test_max_rows_caps_the_work(fitted, seed: int) -> None:
    model, X, y, _, _ = fitted
    report = robustness(model, X, y, "binary", "accuracy", seed=seed, max_rows=50)
    assert report.n_rows == 50


def test_regression_pipeline(frame, seed: int) -> None:
    X, _ = frame
    target = 3 * X["a"] - X["b"]
    model = make_pipeline(StandardScaler(), LinearRegression()).fit(X[["a", "b"]], target)
    report = robustness(model, X[["a", "b"]], target, "regression", "rmse", seed=seed)
    assert report.clean == pytest.approx(0.0, abs=1e-9)
    assert report.case("noise").drop > 0  # any noise hurts a perfect fit (rmse goes up)
    assert report.case("noise").relative_drop is None  # relative to a zero error


def test_bad_inputs_are_user_errors(fitted) -> None:
    model, X, y, _, _ = fitted
    with pytest.raises(ConfigError, match="'rmse' is not a binary metric"):
        robustness(model, X, y, "binary", "rmse")
    with pytest.raises(DataError, match="needs the features as a DataFrame"):
        robustness(model, X.to_numpy(), y, "binary", "accuracy")
