"""Fairness numbers equal fairlearn's, per protected attribute."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    selection_rate,
)

from assay.errors import DataError
from assay.evaluate import FairnessResult, fairness_metrics


@pytest.fixture
def biased(seed: int) -> dict[str, np.ndarray]:
    """Group 'B' is selected less often at the same true label."""
    rng = np.random.default_rng(seed)
    n = 1200
    group = rng.choice(["A", "B", "C"], n, p=[0.5, 0.3, 0.2])
    y = rng.integers(0, 2, n)
    keep = np.where(group == "B", 0.55, 0.9)
    pred = np.where(rng.random(n) < keep, y, 0)
    labels = np.array(["deny", "grant"])
    return {"group": group, "y": labels[y], "pred": labels[pred], "age": rng.uniform(18, 90, n)}


def test_binary_fairness_equals_fairlearn(biased) -> None:
    protected = pd.DataFrame({"group": biased["group"]})
    (result,) = fairness_metrics(
        "binary", biased["y"], biased["pred"], protected, ["deny", "grant"]
    )
    yt = (biased["y"] == "grant").astype(int)
    yp = (biased["pred"] == "grant").astype(int)
    sf = biased["group"]
    assert result.attribute == "group" and result.positive_label == "grant"
    assert result.demographic_parity_difference == pytest.approx(
        demographic_parity_difference(yt, yp, sensitive_features=sf)
    )
    assert result.equalized_odds_difference == pytest.approx(
        equalized_odds_difference(yt, yp, sensitive_features=sf)
    )
    assert result.disparate_impact_ratio == pytest.approx(
        demographic_parity_ratio(yt, yp, sensitive_features=sf)
    )
    rates = MetricFrame(
        metrics=selection_rate, y_true=yt, y_pred=yp, sensitive_features=sf
    ).by_group
    assert {g.group: g.selection_rate for g in result.groups} == pytest.approx(rates.to_dict())
    assert {g.group: g.n for g in result.groups} == {
        k: int(v) for k, v in pd.Series(sf).value_counts().items()
    }
    # the planted bias is visible: group B fails the four-fifths rule
    assert result.disparate_impact_ratio < 0.8
    worst = min(result.groups, key=lambda g: g.selection_rate or 0.0)
    assert worst.group == "B"


def test_fair_decisions_have_small_gaps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 4000
    group = rng.choice(["x", "y"], n)
    y = rng.integers(0, 2, n)
    (result,) = fairness_metrics("binary", y, y, pd.DataFrame({"g": group}), [0, 1])
    assert result.equalized_odds_difference == pytest.approx(0.0)
    assert result.demographic_parity_difference < 0.05
    assert result.disparate_impact_ratio > 0.9


def test_numeric_attribute_is_binned_and_several_attributes_reported(biased) -> None:
    protected = pd.DataFrame({"group": biased["group"], "age": biased["age"]})
    results = fairness_metrics("binary", biased["y"], biased["pred"], protected, ["deny", "grant"])
    assert [r.attribute for r in results] == ["group", "age"]
    assert len(results[1].groups) == 4


def test_small_groups_are_flagged(biased) -> None:
    protected = pd.DataFrame({"group": biased["group"]})
    (result,) = fairness_metrics(
        "binary", biased["y"], biased["pred"], protected, ["deny", "grant"], min_group_size=300
    )
    reliable = {g.group: g.reliable for g in result.groups}
    assert reliable["A"] and not reliable["C"]


def test_multiclass_reports_each_class_one_vs_rest(multiclass_predictions, seed: int) -> None:
    p = multiclass_predictions
    group = np.random.default_rng(seed).choice(["u", "v"], len(p["y_true"]))
    (result,) = fairness_metrics(
        "multiclass", p["y_true"], p["y_pred"], pd.DataFrame({"g": group}), p["classes"]
    )
    assert [c.label for c in result.per_class] == ["cat", "dog", "eel"]
    dog = result.per_class[1]
    expected = demographic_parity_difference(
        (p["y_true"] == "dog").astype(int),
        (p["y_pred"] == "dog").astype(int),
        sensitive_features=group,
    )
    assert dog.demographic_parity_difference == pytest.approx(expected)
    assert result.demographic_parity_difference == max(
        c.demographic_parity_difference for c in result.per_class
    )
    assert result.disparate_impact_ratio == min(c.disparate_impact_ratio for c in result.per_class)
    assert "one-vs-rest" in result.note
    assert FairnessResult.from_dict(result.to_dict()) == result


def test_regression_group_errors_by_hand() -> None:
    # group a: errors 1, 1 (MAE 1, RMSE 1); group b: errors 2, 4 (MAE 3, RMSE sqrt(10))
    y = [10.0, 20.0, 30.0, 40.0]
    pred = [11.0, 19.0, 32.0, 36.0]
    (result,) = fairness_metrics("regression", y, pred, pd.DataFrame({"g": ["a", "a", "b", "b"]}))
    assert result.mae_difference == pytest.approx(2.0)
    assert result.mae_ratio == pytest.approx(1 / 3)
    assert result.rmse_difference == pytest.approx(np.sqrt(10) - 1)
    assert result.rmse_ratio == pytest.approx(1 / np.sqrt(10))
    assert [(g.group, g.mae) for g in result.groups] == [("a", 1.0), ("b", 3.0)]
    assert result.demographic_parity_difference is None
    assert FairnessResult.from_dict(result.to_dict()) == result


def test_regression_group_errors_equal_fairlearn(seed: int) -> None:
    from sklearn.metrics import mean_absolute_error, root_mean_squared_error

    rng = np.random.default_rng(seed)
    n = 900
    group = rng.choice(["north", "south", "east"], n, p=[0.5, 0.3, 0.2])
    y = rng.normal(100, 15, n)
    pred = y + rng.normal(0, np.where(group == "south", 12.0, 4.0))
    (result,) = fairness_metrics("regression", y, pred, pd.DataFrame({"region": group}))
    frame = MetricFrame(
        metrics={"mae": mean_absolute_error, "rmse": root_mean_squared_error},
        y_true=y, y_pred=pred, sensitive_features=group,
    )
    assert result.mae_difference == pytest.approx(frame.difference()["mae"])
    assert result.mae_ratio == pytest.approx(frame.ratio()["mae"])
    assert result.rmse_difference == pytest.approx(frame.difference()["rmse"])
    assert result.rmse_ratio == pytest.approx(frame.ratio()["rmse"])
    # the noisier group has the largest error, so the gap is large and the ratio small
    assert result.mae_ratio < 0.5
    for g in result.groups:
        assert g.mae == pytest.approx(frame.by_group.loc[g.group, "mae"])


def test_fairness_result_stored_before_regression_fields_loads() -> None:
    old = {
        "attribute": "g", "positive_label": 1, "demographic_parity_difference": 0.1,
        "equalized_odds_difference": 0.2, "disparate_impact_ratio": 0.9,
        "groups": [{"group": "a", "n": 3, "selection_rate": 0.5, "true_positive_rate": 1.0,
                    "false_positive_rate": 0.0, "reliable": False}],
        "per_class": [], "note": "",
    }
    result = FairnessResult.from_dict(old)
    assert result.mae_difference is None and result.groups[0].mae is None
    assert result.value("demographic_parity_difference") == 0.1


def test_protected_rows_must_match_predictions() -> None:
    with pytest.raises(DataError, match="column 'sex'.*protected attributes do not have one row"):
        fairness_metrics("binary", [0, 1], [0, 1], pd.DataFrame({"sex": ["f"]}), [0, 1])
