"""Bootstrap intervals and the paired bootstrap."""

from __future__ import annotations

import numpy as np
import pytest

from assay.errors import ConfigError, DataError
from assay.evaluate import (
    PairedComparison,
    bootstrap_intervals,
    compute_metrics,
    paired_bootstrap,
    resample_index,
    resampled_metrics,
)


def _assert_resamples_match(task: str, p: dict, classes) -> None:
    index = resample_index(len(p["y_true"]), 15, seed=3)
    fast = resampled_metrics(task, p["y_true"], p["y_pred"], p.get("proba"), classes, None, index)
    for b, rows in enumerate(index):
        proba = p.get("proba")
        slow = compute_metrics(
            task,
            p["y_true"][rows],
            p["y_pred"][rows],
            None if proba is None else proba[rows],
            classes,
        )
        for name, value in slow.items():
            if value is None:
                assert np.isnan(fast[name][b]), (name, b)
            else:
                assert fast[name][b] == pytest.approx(value, rel=1e-9, abs=1e-12), (name, b)


def test_vectorised_binary_resamples_equal_sklearn(binary_predictions) -> None:
    _assert_resamples_match("binary", binary_predictions, binary_predictions["classes"])


def test_vectorised_multiclass_resamples_equal_sklearn(multiclass_predictions) -> None:
    p = dict(multiclass_predictions)
    # a predicted label the model's classes do not list: scikit-learn's label union counts it
    p["y_pred"] = p["y_pred"].copy()
    p["y_pred"][:7] = "fox"
    _assert_resamples_match("multiclass", p, multiclass_predictions["classes"])


def test_vectorised_regression_resamples_equal_sklearn(regression_predictions) -> None:
    _assert_resamples_match("regression", regression_predictions, None)


def test_resamples_with_one_class_give_nan_auc() -> None:
    y = np.array([0, 0, 0, 1])
    index = np.array([[0, 1, 2, 0], [0, 3, 1, 2]])
    got = resampled_metrics(
        "binary", y, y, np.array([0.1, 0.2, 0.3, 0.9]), [0, 1], ["roc_auc"], index
    )
    assert np.isnan(got["roc_auc"][0])
    assert got["roc_auc"][1] == pytest.approx(1.0)


def test_interval_contains_the_point_estimate(binary_predictions) -> None:
    p = binary_predictions
    point = compute_metrics("binary", p["y_true"], p["y_pred"], p["proba"], p["classes"])
    intervals = bootstrap_intervals(
        "binary", p["y_true"], p["y_pred"], p["proba"], p["classes"], n_boot=300, seed=1
    )
    assert set(intervals) == set(point)
    for name, (low, high) in intervals.items():
        assert low <= point[name] <= high, name
        assert low < high, name


def test_interval_narrows_with_more_rows(seed: int) -> None:
    rng = np.random.default_rng(seed)

    def width(n: int) -> float:
        y = rng.integers(0, 2, n)
        pred = np.where(rng.random(n) < 0.8, y, 1 - y)
        low, high = bootstrap_intervals("binary", y, pred, None, [0, 1], ["accuracy"], seed=seed)[
            "accuracy"
        ]
        return high - low

    small, large = width(200), width(5000)
    assert large < small / 3


def test_intervals_are_reproducible_with_a_seed(regression_predictions) -> None:
    p = regression_predictions
    first = bootstrap_intervals("regression", p["y_true"], p["y_pred"], seed=5)
    again = bootstrap_intervals("regression", p["y_true"], p["y_pred"], seed=5)
    other = bootstrap_intervals("regression", p["y_true"], p["y_pred"], seed=6)
    assert first == again
    assert first != other


def test_metrics_without_probabilities_have_no_interval(multiclass_predictions) -> None:
    p = multiclass_predictions
    got = bootstrap_intervals("multiclass", p["y_true"], p["y_pred"], None, p["classes"], n_boot=50)
    assert "log_loss" not in got and "roc_auc_ovr" not in got
    assert "f1_macro" in got


def _two_models(seed: int, n: int = 1000) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    good = np.clip(0.5 * y + rng.normal(0.25, 0.15, n), 0, 1)
    weak = np.clip(0.1 * y + rng.normal(0.45, 0.15, n), 0, 1)
    return {"y": y, "good": good, "weak": weak}


def test_paired_bootstrap_finds_the_clearly_better_model(seed: int) -> None:
    m = _two_models(seed)
    result = paired_bootstrap(
        "binary",
        "roc_auc",
        m["y"],
        (m["weak"] > 0.5).astype(int),
        m["weak"],
        (m["good"] > 0.5).astype(int),
        m["good"],
        [0, 1],
        n_boot=300,
        seed=seed,
    )
    assert result.delta > 0.1
    assert result.ci_low > 0 and result.b_better
    assert result.p_value_b_not_better < 0.01
    swapped = paired_bootstrap(
        "binary",
        "roc_auc",
        m["y"],
        (m["good"] > 0.5).astype(int),
        m["good"],
        (m["weak"] > 0.5).astype(int),
        m["weak"],
        [0, 1],
        n_boot=300,
        seed=seed,
    )
    assert swapped.delta == pytest.approx(-result.delta)
    assert swapped.p_value_b_not_better > 0.99


def test_paired_bootstrap_sign_is_better_for_a_loss(seed: int) -> None:
    m = _two_models(seed)
    result = paired_bootstrap(
        "binary",
        "log_loss",
        m["y"],
        (m["weak"] > 0.5).astype(int),
        m["weak"],
        (m["good"] > 0.5).astype(int),
        m["good"],
        [0, 1],
        n_boot=200,
        seed=seed,
    )
    assert result.value_b < result.value_a  # lower loss
    assert result.delta == pytest.approx(result.value_a - result.value_b)
    assert result.delta > 0 and not result.higher_is_better


def test_identical_models_are_tied(seed: int) -> None:
    m = _two_models(seed)
    pred = (m["good"] > 0.5).astype(int)
    result = paired_bootstrap(
        "binary", "f1", m["y"], pred, m["good"], pred, m["good"], [0, 1], n_boot=200, seed=seed
    )
    assert result.delta == 0.0
    assert result.ci_low <= 0.0 <= result.ci_high
    assert result.p_value_b_not_better == pytest.approx(0.5)
    assert not result.b_better


def test_paired_comparison_round_trips(seed: int) -> None:
    m = _two_models(seed, n=200)
    result = paired_bootstrap(
        "regression", "mae", m["good"], m["weak"], None, m["good"] + 0.01, None, n_boot=100
    )
    assert PairedComparison.from_dict(result.to_dict()) == result


def test_paired_bootstrap_undefined_metric_is_a_data_error() -> None:
    y = np.array([1, 1, 1])
    with pytest.raises(DataError, match="'roc_auc' cannot be computed for both models"):
        paired_bootstrap("binary", "roc_auc", y, y, [0.9] * 3, y, [0.8] * 3, [0, 1])


def test_paired_bootstrap_unknown_metric_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'auc' is not a binary metric"):
        paired_bootstrap("binary", "auc", [0, 1], [0, 1], None, [0, 1], None, [0, 1])
