"""Per-slice metrics: levels, sizes, reliability and re-aggregation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.errors import DataError
from assay.evaluate import SliceReport, compute_metrics, reaggregate, slice_metrics


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 2),  # true label
            st.integers(0, 2),  # predicted label
            st.sampled_from(["a", "b", "c", None]),  # categorical slice (None = missing)
            st.floats(-100, 100, allow_nan=False),  # numeric slice
        ),
        min_size=1,
        max_size=60,
    )
)
def test_slice_accuracy_reaggregates_to_the_global_value(rows) -> None:
    y = np.array([r[0] for r in rows])
    pred = np.array([r[1] for r in rows])
    slices = pd.DataFrame({"cat": [r[2] for r in rows], "num": [r[3] for r in rows]})
    overall = compute_metrics("multiclass", y, pred, metrics=["accuracy"])["accuracy"]
    for report in slice_metrics("multiclass", y, pred, slices, metrics=["accuracy"]):
        assert sum(lv.n for lv in report.levels) == len(rows)
        assert reaggregate(report, "accuracy") == pytest.approx(overall)


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.floats(-1e3, 1e3, allow_nan=False),
            st.floats(-1e3, 1e3, allow_nan=False),
            st.integers(0, 20),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_slice_mae_reaggregates_to_the_global_value(rows) -> None:
    y = np.array([r[0] for r in rows])
    pred = np.array([r[1] for r in rows])
    slices = pd.DataFrame({"k": [r[2] for r in rows]})
    overall = compute_metrics("regression", y, pred, metrics=["mae"])["mae"]
    (report,) = slice_metrics("regression", y, pred, slices, metrics=["mae"])
    assert reaggregate(report, "mae") == pytest.approx(overall, rel=1e-9, abs=1e-9)


def test_numeric_column_is_cut_into_quartiles(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    income = rng.uniform(0, 100, n)
    y = rng.normal(size=n)
    (report,) = slice_metrics(
        "regression", y, y + 1.0, pd.DataFrame({"income": income}), metrics=["mae"]
    )
    assert report.binned
    assert [lv.n for lv in report.levels] == [100, 100, 100, 100]
    lows = [float(lv.level.split(",")[0].strip("([")) for lv in report.levels]
    assert lows == sorted(lows)  # levels in ascending order, not text order
    assert all(lv.metrics["mae"] == pytest.approx(1.0) for lv in report.levels)


def test_small_levels_are_unreliable_and_missing_is_a_level() -> None:
    plan = ["basic"] * 50 + ["premium"] * 10 + [None] * 5
    y = np.array([1] * 65)
    pred = np.array([1] * 50 + [0] * 10 + [1] * 5)
    (report,) = slice_metrics(
        "binary",
        y,
        pred,
        pd.DataFrame({"plan": plan}),
        classes=[0, 1],
        metrics=["accuracy"],
        min_slice_size=30,
    )
    levels = {lv.level: lv for lv in report.levels}
    assert set(levels) == {"basic", "premium", "(missing)"}
    assert levels["basic"].reliable and not levels["premium"].reliable
    assert levels["premium"].metrics["accuracy"] == 0.0
    assert report.worst("accuracy") is levels["basic"]  # the only reliable level
    assert report.worst("accuracy", reliable_only=False) is levels["premium"]


def test_planted_weak_slice_is_worst(seed: int) -> None:
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "west"], 900)
    y = rng.integers(0, 2, 900)
    pred = np.where((region == "west") & (rng.random(900) < 0.5), 1 - y, y)
    (report,) = slice_metrics("binary", y, pred, pd.DataFrame({"region": region}), classes=[0, 1])
    worst = report.worst("f1")
    assert worst is not None and worst.level == "west"
    assert SliceReport.from_dict(report.to_dict()) == report


def test_slice_rows_must_match_predictions() -> None:
    with pytest.raises(DataError, match="column 'plan'.*one row per prediction.*expected 3 rows"):
        slice_metrics("binary", [0, 1, 0], [0, 1, 1], pd.DataFrame({"plan": ["a", "b"]}))
