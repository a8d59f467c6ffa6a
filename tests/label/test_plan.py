"""The label plan: a planted inverse power law gives back the rows it was planted with."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assay.errors import DataError
from assay.label.plan import fit_power_law, label_plan, rows_for

SIZES = np.array([100, 200, 300, 400, 600, 800])


def accuracy(n: np.ndarray) -> np.ndarray:
    """0.95 - 2 / sqrt(n): reaches 0.90 at exactly n = (2 / 0.05) ** 2 = 1600 rows."""
    return np.asarray(0.95 - 2.0 * np.asarray(n, dtype=float) ** -0.5)


def test_an_exact_power_law_is_recovered() -> None:
    law = fit_power_law(SIZES, accuracy(SIZES), ceiling=1.0)
    assert (law.a, law.b, law.c) == pytest.approx((0.95, 2.0, 0.5), rel=1e-4)
    assert rows_for(law, 0.90) == pytest.approx(1600, rel=1e-3)
    assert rows_for(law, 0.96) == float("inf")


def test_a_noisy_planted_curve_gives_the_known_answer_within_its_interval() -> None:
    rng = np.random.default_rng(0)
    plan = label_plan(
        SIZES, accuracy(SIZES) + rng.normal(0, 0.002, SIZES.size), 0.90,
        greater_is_better=True, best_possible=1.0, seed=1, metric="accuracy",
    )
    assert plan.status == "reachable"
    low, high = plan.interval
    assert low is not None and high is not None
    assert low <= 1600 <= high
    assert plan.rows_needed == pytest.approx(1600, rel=0.15)
    assert plan.current_rows == 800 and plan.additional_rows == plan.rows_needed - 800
    assert plan.asymptote == pytest.approx(0.95, abs=0.01)
    assert "extrapolation to" in plan.warning and "rough guide" in plan.warning
    assert json.loads(json.dumps(plan.to_dict()))["rows_needed"] == plan.rows_needed


def test_replicate_scores_per_size_are_bootstrapped() -> None:
    rng = np.random.default_rng(2)
    replicates = [accuracy(np.full(4, n)) + rng.normal(0, 0.004, 4) for n in SIZES]
    plan = label_plan(
        SIZES, replicates, 0.90, greater_is_better=True, best_possible=1.0, seed=0,
        hours_per_label=0.01,
    )
    low, high = plan.interval
    assert low is not None and high is not None and low <= 1600 <= high
    assert plan.scores == pytest.approx([float(np.mean(r)) for r in replicates])
    assert plan.hours == pytest.approx(plan.additional_rows * 0.01)
    assert plan.hours_interval[0] == pytest.approx((low - 800) * 0.01)


def test_the_same_seed_gives_the_same_interval() -> None:
    rng = np.random.default_rng(3)
    scores = accuracy(SIZES) + rng.normal(0, 0.003, SIZES.size)
    a = label_plan(SIZES, scores, 0.9, greater_is_better=True, seed=5, n_boot=50)
    b = label_plan(SIZES, scores, 0.9, greater_is_better=True, seed=5, n_boot=50)
    assert a.interval == b.interval and a.rows_needed == b.rows_needed


def test_an_error_metric_is_mirrored() -> None:
    rmse = 1.0 + 5.0 * SIZES.astype(float) ** -0.5  # reaches 1.1 at (5 / 0.1) ** 2 = 2500
    plan = label_plan(SIZES, rmse, 1.1, greater_is_better=False, best_possible=0.0)
    assert plan.status == "reachable"
    assert plan.rows_needed == pytest.approx(2500, rel=0.01)
    assert plan.asymptote == pytest.approx(1.0, abs=1e-3)


def test_a_threshold_above_the_ceiling_is_unreachable() -> None:
    plan = label_plan(SIZES, accuracy(SIZES), 0.97, greater_is_better=True, best_possible=1.0)
    assert plan.status == "unreachable"
    assert plan.rows_needed is None and plan.additional_rows is None
    assert plan.unreachable_share == 1.0
    assert plan.warning.startswith("unreachable: the fitted curve levels off at the metric 0.95")


def test_a_threshold_reached_only_absurdly_far_out_is_unreachable_in_practice() -> None:
    plan = label_plan(SIZES, accuracy(SIZES), 0.9499, greater_is_better=True)
    assert plan.status == "unreachable"
    assert "only beyond 1000x the largest measured training set" in plan.warning


def test_a_threshold_already_met_needs_no_more_rows() -> None:
    plan = label_plan(SIZES, accuracy(SIZES), 0.80, greater_is_better=True)
    assert plan.status == "met"
    assert plan.additional_rows == 0
    assert "already reaches 0.8" in plan.warning


@pytest.mark.parametrize(
    ("sizes", "scores", "match"),
    [
        ([100, 200], [0.8, 0.85], "three or more training-set sizes"),
        ([100, 100, 100], [0.8, 0.81, 0.82], "three or more training-set sizes"),
        ([100, 200, 300], [0.8, np.nan, 0.9], "three or more training-set sizes"),
        ([0, 200, 300], [0.8, 0.85, 0.9], "sizes are row counts"),
        ([100, 200, 300], [0.8, 0.85], "one score"),
    ],
)
def test_unusable_curves_are_refused(sizes: list[float], scores: list[float], match: str) -> None:
    with pytest.raises(DataError, match=match):
        label_plan(sizes, scores, 0.9, greater_is_better=True)
